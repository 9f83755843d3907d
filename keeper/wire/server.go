package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Handler is the instance's side of the requests. Serve calls one method at a time.
type Handler interface {
	// Hello sees the keeper's Hello (already version-checked) and returns the program
	// string to answer with; an error refuses the conversation.
	Hello(ctx context.Context, peer Hello) (program string, err error)
	State(ctx context.Context) (State, error)
	// Header returns the raw LUKS header bytes (at most MaxHeaderSize).
	Header(ctx context.Context) ([]byte, error)
	// Unlock gets the key in a buffer Serve owns and zeroes when Unlock returns: it must
	// not keep key. A refusal is a Result with StatusRefused, not an error.
	Unlock(ctx context.Context, req UnlockRequest, key []byte) (Result, error)
}

// Serve answers one keeper over rw until the keeper closes its side (nil), ctx ends
// (ctx.Err()), or the keeper breaks the protocol (an error matching one of the package's
// sentinels, after an Error frame was sent back when the stream allowed it). Handler
// errors are sent as Error frames and do not end the conversation.
func Serve(ctx context.Context, rw io.ReadWriter, h Handler) error {
	s := server{c: conn{rw: rw}, h: h}
	return s.serve(ctx)
}

type server struct {
	c conn
	h Handler
}

func (s *server) serve(ctx context.Context) error {
	t, p, err := s.c.readFrame(ctx)
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	if t != TypeHello {
		return s.fail(ctx, fmt.Errorf("%w: %s before Hello", ErrUnexpected, t))
	}
	var peer Hello
	if err := decode(t, p, &peer); err != nil {
		return s.fail(ctx, err)
	}
	if peer.Protocol != Version {
		err := fmt.Errorf("%w: keeper speaks %d, instance %d", ErrVersion, peer.Protocol, Version)
		s.c.writeJSON(ctx, TypeError, &Error{Code: CodeVersion, Message: fmt.Sprintf("protocol version %d not supported (this side speaks %d)", peer.Protocol, Version)})
		return err
	}
	program, err := s.h.Hello(ctx, peer)
	if err != nil {
		e := errorFrame(err)
		if e.Code == CodeInternal {
			e.Code = CodeRefused
		}
		s.c.writeJSON(ctx, TypeError, e)
		return fmt.Errorf("wire: hello refused: %w", err)
	}
	if err := s.c.writeJSON(ctx, TypeHello, Hello{Protocol: Version, Program: program}); err != nil {
		return err
	}
	for {
		if err := s.one(ctx); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// one answers one request. It returns io.EOF when the keeper closed its side cleanly.
func (s *server) one(ctx context.Context) error {
	t, n, err := s.c.readPrefix(ctx)
	if err != nil {
		return s.fail(ctx, err)
	}
	switch t {
	case TypeStateRequest:
		st, err := s.h.State(ctx)
		if err != nil {
			return s.handlerErr(ctx, err)
		}
		return s.c.writeJSON(ctx, TypeState, st)
	case TypeHeaderRequest:
		hdr, err := s.h.Header(ctx)
		if err != nil {
			return s.handlerErr(ctx, err)
		}
		if len(hdr) > MaxHeaderSize {
			return s.handlerErr(ctx, fmt.Errorf("header of %d bytes exceeds the protocol's %d", len(hdr), MaxHeaderSize))
		}
		return s.c.writeFrame(ctx, TypeHeader, hdr)
	case TypeUnlock:
		p, err := s.c.readPayload(ctx, t, n)
		if err != nil {
			return s.fail(ctx, err)
		}
		var req UnlockRequest
		if err := decode(t, p, &req); err != nil {
			return s.fail(ctx, err)
		}
		if err := req.validate(); err != nil {
			return s.fail(ctx, err)
		}
		return s.unlock(ctx, req)
	}
	if t == TypeKey {
		// A key without its Unlock: never read it into memory.
		s.c.discard(ctx, t, n)
	}
	return s.fail(ctx, fmt.Errorf("%w: %s is not a request", ErrUnexpected, t))
}

func (s *server) unlock(ctx context.Context, req UnlockRequest) error {
	t, n, err := s.c.readPrefix(ctx)
	if err == io.EOF {
		err = fmt.Errorf("%w: stream ended before the Key frame", ErrTruncated)
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	if t != TypeKey {
		return s.fail(ctx, fmt.Errorf("%w: %s where Key was expected", ErrUnexpected, t))
	}
	if n != req.KeySize {
		s.c.discard(ctx, t, n)
		return s.fail(ctx, fmt.Errorf("%w: Key frame of %d bytes, Unlock announced %d", ErrKeySize, n, req.KeySize))
	}
	var buf [MaxKeySize]byte
	defer clear(buf[:])
	key := buf[:n]
	if err := s.c.readInto(ctx, t, key); err != nil {
		return s.fail(ctx, err)
	}
	r, err := s.h.Unlock(ctx, req, key)
	clear(buf[:])
	if err != nil {
		return s.handlerErr(ctx, err)
	}
	if err := r.validate(); err != nil {
		return s.handlerErr(ctx, err)
	}
	return s.c.writeJSON(ctx, TypeResult, r)
}

// handlerErr reports a handler's error to the keeper; the conversation goes on.
func (s *server) handlerErr(ctx context.Context, err error) error {
	return s.c.writeJSON(ctx, TypeError, errorFrame(err))
}

// fail ends the conversation on a protocol error, telling the keeper why when the error
// came from the keeper's bytes (not from a dead transport or an ended context).
func (s *server) fail(ctx context.Context, err error) error {
	if err == io.EOF || ctx.Err() != nil {
		return err
	}
	for _, e := range []error{ErrUnknownType, ErrFrameTooLarge, ErrUnexpected, ErrMalformed, ErrKeySize} {
		if errors.Is(err, e) {
			s.c.writeJSON(ctx, TypeError, &Error{Code: CodeBadRequest, Message: err.Error()})
			break
		}
	}
	return err
}
