package wire

import (
	"context"
	"fmt"
	"io"
)

// Client is the keeper's end. It is not safe for concurrent use: the protocol is one
// request at a time.
type Client struct {
	c       conn
	program string
	peer    *Hello
}

// NewClient returns a Client speaking over rw (an SSH session's stdout as the reader and
// stdin as the writer). program is sent in Hello, for the instance's logs.
func NewClient(rw io.ReadWriter, program string) *Client {
	return &Client{c: conn{rw: rw}, program: program}
}

// Hello exchanges Hello frames and returns the instance's. It must succeed before any
// other method. A peer of another version gives an error matching ErrVersion.
func (cl *Client) Hello(ctx context.Context) (Hello, error) {
	if err := cl.c.writeJSON(ctx, TypeHello, Hello{Protocol: Version, Program: cl.program}); err != nil {
		return Hello{}, err
	}
	var h Hello
	if err := cl.reply(ctx, TypeHello, &h); err != nil {
		return Hello{}, err
	}
	if h.Protocol != Version {
		return h, fmt.Errorf("%w: instance speaks %d, keeper %d", ErrVersion, h.Protocol, Version)
	}
	cl.peer = &h
	return h, nil
}

// State asks for the instance's boot id and volume state.
func (cl *Client) State(ctx context.Context) (State, error) {
	var s State
	if cl.peer == nil {
		return s, ErrNoHello
	}
	if err := cl.c.writeFrame(ctx, TypeStateRequest, nil); err != nil {
		return s, err
	}
	return s, cl.reply(ctx, TypeState, &s)
}

// Header asks for the LUKS header of the served device: at most MaxHeaderSize bytes.
func (cl *Client) Header(ctx context.Context) ([]byte, error) {
	if cl.peer == nil {
		return nil, ErrNoHello
	}
	if err := cl.c.writeFrame(ctx, TypeHeaderRequest, nil); err != nil {
		return nil, err
	}
	t, p, err := cl.c.readFrame(ctx)
	if err != nil {
		return nil, err
	}
	switch t {
	case TypeHeader:
		return p, nil
	case TypeError:
		return nil, remote(p)
	}
	return nil, fmt.Errorf("%w: %s in answer to HeaderRequest", ErrUnexpected, t)
}

// Unlock sends req (its KeySize set from key) and then key in its own frame, and returns
// the instance's Result. key is written as is, never copied; the caller zeroes it. A
// Result with StatusRefused is not an error.
func (cl *Client) Unlock(ctx context.Context, req UnlockRequest, key []byte) (Result, error) {
	var r Result
	if cl.peer == nil {
		return r, ErrNoHello
	}
	req.KeySize = len(key)
	if err := req.validate(); err != nil {
		return r, err
	}
	if err := cl.c.writeJSON(ctx, TypeUnlock, req); err != nil {
		return r, err
	}
	if err := cl.c.writeKey(ctx, key); err != nil {
		return r, err
	}
	if err := cl.reply(ctx, TypeResult, &r); err != nil {
		return r, err
	}
	return r, r.validate()
}

// reply reads one frame of type want into v, or turns an Error frame into an error.
func (cl *Client) reply(ctx context.Context, want Type, v any) error {
	t, p, err := cl.c.readFrame(ctx)
	if err != nil {
		return err
	}
	switch t {
	case want:
		return decode(t, p, v)
	case TypeError:
		return remote(p)
	}
	return fmt.Errorf("%w: %s where %s was expected", ErrUnexpected, t, want)
}

// remote decodes an Error frame's payload into the error a Client returns.
func remote(p []byte) error {
	var e Error
	if err := decode(TypeError, p, &e); err != nil {
		return err
	}
	if err := e.validate(); err != nil {
		return err
	}
	return fmt.Errorf("wire: instance: %w", &e)
}
