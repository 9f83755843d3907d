package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the protocol's major version: a peer with another one is refused.
const Version = 1

// Per-type payload limits (see the package doc's table).
const (
	MaxHeaderSize = 32 << 20 // the largest LUKS header (+ key material) the instance sends
	MaxKeySize    = 512      // the longest volume key accepted (LUKS1 has at most 64 bytes)

	maxSmallJSON  = 4 << 10
	maxStateJSON  = 64 << 10
	maxResultJSON = 16 << 10

	// growStep is how much a reader allocates at a time for a large frame: memory follows
	// the bytes received, not the length announced.
	growStep = 64 << 10
)

// Type is a frame's message type byte.
type Type byte

// The message types.
const (
	TypeHello         Type = 0x01
	TypeStateRequest  Type = 0x02
	TypeState         Type = 0x03
	TypeHeaderRequest Type = 0x04
	TypeHeader        Type = 0x05
	TypeUnlock        Type = 0x06
	TypeKey           Type = 0x07
	TypeResult        Type = 0x08
	TypeError         Type = 0x09
)

var typeNames = [...]string{
	TypeHello: "Hello", TypeStateRequest: "StateRequest", TypeState: "State",
	TypeHeaderRequest: "HeaderRequest", TypeHeader: "Header", TypeUnlock: "Unlock",
	TypeKey: "Key", TypeResult: "Result", TypeError: "Error",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type 0x%02x", byte(t))
}

// MaxPayload is the largest payload a frame of type t may carry, and false for an unknown type.
func MaxPayload(t Type) (int, bool) {
	switch t {
	case TypeHello, TypeUnlock, TypeError:
		return maxSmallJSON, true
	case TypeStateRequest, TypeHeaderRequest:
		return 0, true
	case TypeState:
		return maxStateJSON, true
	case TypeHeader:
		return MaxHeaderSize, true
	case TypeKey:
		return MaxKeySize, true
	case TypeResult:
		return maxResultJSON, true
	}
	return 0, false
}

// Errors. Every error a Client method or Serve returns matches one of these with errors.Is
// (or is the context's error, or an I/O error of the transport).
var (
	// ErrUnknownType: a frame's type byte is not in the table.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrFrameTooLarge: a frame announces more bytes than its type allows.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("wire: truncated frame")
	// ErrUnexpected: a well-formed frame of a type that is not allowed at this point.
	ErrUnexpected = errors.New("wire: unexpected message")
	// ErrMalformed: a payload that does not decode, or decodes to invalid values.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrVersion: the peer speaks another protocol version.
	ErrVersion = errors.New("wire: protocol version mismatch")
	// ErrKeySize: a key of a length the protocol does not carry (0, or > MaxKeySize),
	// or a Key frame whose length is not the one announced.
	ErrKeySize = errors.New("wire: bad key size")
	// ErrNoHello: a Client method was called before Hello succeeded.
	ErrNoHello = errors.New("wire: Hello not done")
	// ErrRemote: the peer answered with an Error frame; errors.As gives the *Error.
	ErrRemote = errors.New("wire: peer reported an error")
)

// conn wraps the transport with the context-aware frame reader and writer.
type conn struct {
	rw io.ReadWriter
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// guard applies ctx to one transport operation: its deadline now, and a deadline in the
// past when it is cancelled. The returned stop must be called when the operation ends.
func guard(ctx context.Context, set func(time.Time) error) (stop func()) {
	if set == nil {
		return func() {}
	}
	if d, ok := ctx.Deadline(); ok {
		if set(d) != nil {
			return func() {}
		}
	} else {
		set(time.Time{})
	}
	cancel := context.AfterFunc(ctx, func() { set(time.Unix(1, 0)) })
	return func() { cancel() }
}

func (c *conn) readSetter() func(time.Time) error {
	if d, ok := c.rw.(readDeadliner); ok {
		return d.SetReadDeadline
	}
	return nil
}

func (c *conn) writeSetter() func(time.Time) error {
	if d, ok := c.rw.(writeDeadliner); ok {
		return d.SetWriteDeadline
	}
	return nil
}

// ioErr turns a transport error caused by the context into the context's error.
func ioErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) && !isTimeout(err) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The transport's deadline (the context's) can fire a moment before the context's own
	// timer does.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// readPrefix reads a frame's 5-byte prefix and checks it against the limits. At a clean
// end of stream (no byte of a new frame) it returns io.EOF.
func (c *conn) readPrefix(ctx context.Context) (Type, int, error) {
	var p [5]byte
	stop := guard(ctx, c.readSetter())
	_, err := io.ReadFull(c.rw, p[:])
	stop()
	if err == io.ErrUnexpectedEOF {
		return 0, 0, fmt.Errorf("%w: %d-byte frame prefix cut short", ErrTruncated, len(p))
	}
	if err != nil {
		return 0, 0, ioErr(ctx, err)
	}
	t, n := Type(p[4]), binary.BigEndian.Uint32(p[:4])
	limit, ok := MaxPayload(t)
	if !ok {
		return t, 0, fmt.Errorf("%w: %s", ErrUnknownType, t)
	}
	if uint64(n) > uint64(limit) {
		return t, 0, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrFrameTooLarge, t, n, limit)
	}
	return t, int(n), nil
}

// readInto fills buf (the payload of a frame whose prefix was read).
func (c *conn) readInto(ctx context.Context, t Type, buf []byte) error {
	stop := guard(ctx, c.readSetter())
	_, err := io.ReadFull(c.rw, buf)
	stop()
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return fmt.Errorf("%w: %s payload of %d bytes cut short", ErrTruncated, t, len(buf))
	}
	return ioErr(ctx, err)
}

// readPayload reads an n-byte payload, allocating at most growStep ahead of the bytes
// that have actually arrived.
func (c *conn) readPayload(ctx context.Context, t Type, n int) ([]byte, error) {
	if n <= growStep {
		buf := make([]byte, n)
		return buf, c.readInto(ctx, t, buf)
	}
	var b bytes.Buffer
	b.Grow(growStep)
	stop := guard(ctx, c.readSetter())
	got, err := io.CopyN(&b, c.rw, int64(n))
	stop()
	if got < int64(n) {
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("%w: %s payload of %d bytes cut short after %d", ErrTruncated, t, n, got)
		}
		return nil, ioErr(ctx, err)
	}
	return b.Bytes(), nil
}

// discard skips an n-byte payload without keeping it.
func (c *conn) discard(ctx context.Context, t Type, n int) error {
	stop := guard(ctx, c.readSetter())
	got, err := io.CopyN(io.Discard, c.rw, int64(n))
	stop()
	if got < int64(n) {
		if err == nil || err == io.EOF {
			return fmt.Errorf("%w: %s payload of %d bytes cut short", ErrTruncated, t, n)
		}
		return ioErr(ctx, err)
	}
	return nil
}

// readFrame reads one whole frame other than a Key frame.
func (c *conn) readFrame(ctx context.Context) (Type, []byte, error) {
	t, n, err := c.readPrefix(ctx)
	if err != nil {
		return t, nil, err
	}
	if t == TypeKey {
		// A key is read only by readKey, into the caller's buffer: never into a heap
		// slice that nobody zeroes.
		if derr := c.discard(ctx, t, n); derr != nil {
			return t, nil, derr
		}
		return t, nil, fmt.Errorf("%w: %s", ErrUnexpected, t)
	}
	p, err := c.readPayload(ctx, t, n)
	return t, p, err
}

// writeFrame writes one frame: prefix and payload in one Write for control messages.
func (c *conn) writeFrame(ctx context.Context, t Type, payload []byte) error {
	if limit, ok := MaxPayload(t); !ok || len(payload) > limit {
		return fmt.Errorf("%w: refusing to send %s of %d bytes", ErrFrameTooLarge, t, len(payload))
	}
	buf := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	buf[4] = byte(t)
	copy(buf[5:], payload)
	stop := guard(ctx, c.writeSetter())
	_, err := c.rw.Write(buf)
	stop()
	return ioErr(ctx, err)
}

// writeKey writes a Key frame: the prefix, then the caller's slice itself (no copy).
func (c *conn) writeKey(ctx context.Context, key []byte) error {
	var p [5]byte
	binary.BigEndian.PutUint32(p[:4], uint32(len(key)))
	p[4] = byte(TypeKey)
	stop := guard(ctx, c.writeSetter())
	defer stop()
	if _, err := c.rw.Write(p[:]); err != nil {
		return ioErr(ctx, err)
	}
	_, err := c.rw.Write(key)
	return ioErr(ctx, err)
}

func (c *conn) writeJSON(ctx context.Context, t Type, v any) error {
	// The free text of an Error or a Result (an error message, a hook's failure) is cut
	// until the encoded frame fits its limit: the limit is on the JSON, whose escapes
	// make a string longer than its bytes.
	var text *string
	switch m := v.(type) {
	case *Error:
		e := *m
		v, text = &e, &e.Message
	case Result:
		v, text = &m, &m.Reason
	case *Result:
		r := *m
		v, text = &r, &r.Reason
	}
	limit, _ := MaxPayload(t)
	for {
		p, err := marshalJSON(v)
		if err != nil {
			return fmt.Errorf("wire: encode %s: %w", t, err)
		}
		if len(p) <= limit || text == nil || len(*text) <= len(ellipsis) {
			return c.writeFrame(ctx, t, p)
		}
		// Every byte cut removes at least one encoded byte.
		body := strings.TrimSuffix(*text, ellipsis)
		keep := max(len(body)-(len(p)-limit)-len(ellipsis), 0)
		*text = strings.ToValidUTF8(body[:keep], "") + ellipsis
	}
}

const ellipsis = "…"

// marshalJSON encodes v without HTML escapes: '<' stays one byte, not six.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decode parses a JSON payload strictly: one object, valid UTF-8, nothing after it.
func decode(t Type, p []byte, v any) error {
	if !utf8.Valid(p) {
		return fmt.Errorf("%w: %s payload is not UTF-8", ErrMalformed, t)
	}
	if b := bytes.TrimLeft(p, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: %s payload is not a JSON object", ErrMalformed, t)
	}
	d := json.NewDecoder(bytes.NewReader(p))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrMalformed, t, err)
	}
	if d.More() {
		return fmt.Errorf("%w: %s payload has data after the object", ErrMalformed, t)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: %s payload has data after the object", ErrMalformed, t)
	}
	return nil
}
