package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testHandler records what Serve hands it.
type testHandler struct {
	state     State
	header    []byte
	stateErr  error
	gotKey    []byte // a copy, for the assertion
	keySlice  []byte // the slice Serve passed, to check it was zeroed afterwards
	gotReq    UnlockRequest
	result    Result
	peer      Hello
	helloErr  error
	unlockErr error
}

func (h *testHandler) Hello(ctx context.Context, peer Hello) (string, error) {
	h.peer = peer
	return "instance-test 1", h.helloErr
}
func (h *testHandler) State(ctx context.Context) (State, error) { return h.state, h.stateErr }
func (h *testHandler) Header(ctx context.Context) ([]byte, error) {
	return h.header, nil
}
func (h *testHandler) Unlock(ctx context.Context, req UnlockRequest, key []byte) (Result, error) {
	h.gotReq = req
	h.gotKey = bytes.Clone(key)
	h.keySlice = key
	return h.result, h.unlockErr
}

// pair starts Serve on one end of a net.Pipe and returns a Client on the other.
func pair(t *testing.T, h Handler) (*Client, func() error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), b, h); b.Close() }()
	t.Cleanup(func() { a.Close() })
	return NewClient(a, "keeper-test 1"), func() error {
		a.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after the keeper closed")
			return nil
		}
	}
}

func TestRoundTrip(t *testing.T) {
	hdr := bytes.Repeat([]byte("LUKS\xba\xbe"), 200000) // > growStep: the incremental path
	h := &testHandler{
		state: State{BootID: "b-1", VolumeID: "vol-0123456789abcdef0", Device: "/dev/nvme1n1",
			Serial: "vol0123456789abcdef0", LUKSVersion: 1, LUKSUUID: "u-1", Mapping: "data",
			MountPoint: "/data", BootUnlockDisabled: true},
		header: hdr,
		result: Result{Status: StatusUnlocked, Mounted: "/data", HooksOK: true},
	}
	cl, closeFn := pair(t, h)
	ctx := context.Background()
	_, err := cl.State(ctx)
	require.ErrorIs(t, err, ErrNoHello)

	peer, err := cl.Hello(ctx)
	require.NoError(t, err)
	assert.Equal(t, Hello{Protocol: 1, Program: "instance-test 1"}, peer)
	assert.Equal(t, Hello{Protocol: 1, Program: "keeper-test 1"}, h.peer)

	st, err := cl.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, h.state, st)

	got, err := cl.Header(ctx)
	require.NoError(t, err)
	assert.Equal(t, hdr, got)

	key := bytes.Repeat([]byte{0xA5, 0x00, 0x5A}, 11)[:32]
	r, err := cl.Unlock(ctx, UnlockRequest{BootID: "b-1", LUKSUUID: "u-1"}, key)
	require.NoError(t, err)
	assert.Equal(t, h.result, r)
	assert.Equal(t, key, h.gotKey)
	assert.Equal(t, UnlockRequest{BootID: "b-1", LUKSUUID: "u-1", KeySize: 32}, h.gotReq)
	assert.Equal(t, make([]byte, 32), h.keySlice, "Serve zeroes the key buffer after the handler")
	assert.Equal(t, byte(0xA5), key[0], "the caller's key is the caller's to zero")

	// A handler error is an Error frame; the conversation goes on.
	h.stateErr = &Error{Code: CodeRefused, Message: "no"}
	_, err = cl.State(ctx)
	require.ErrorIs(t, err, ErrRemote)
	var re *Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeRefused, re.Code)
	h.stateErr = errors.New("disk on fire")
	_, err = cl.State(ctx)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, Error{Code: CodeInternal, Message: "disk on fire"}, *re)
	h.stateErr = nil
	_, err = cl.State(ctx)
	require.NoError(t, err)

	// A refusal is a Result, not an error.
	h.result = Result{Status: StatusRefused, Reason: "boot id changed"}
	r, err = cl.Unlock(ctx, UnlockRequest{BootID: "b-0", LUKSUUID: "u-1"}, key)
	require.NoError(t, err)
	assert.Equal(t, StatusRefused, r.Status)

	require.NoError(t, closeFn())
}

func TestClientKeySize(t *testing.T) {
	cl, closeFn := pair(t, &testHandler{result: Result{Status: StatusUnlocked}})
	ctx := context.Background()
	_, err := cl.Hello(ctx)
	require.NoError(t, err)
	for _, n := range []int{0, MaxKeySize + 1} {
		_, err := cl.Unlock(ctx, UnlockRequest{BootID: "b", LUKSUUID: "u"}, make([]byte, n))
		require.ErrorIs(t, err, ErrKeySize, "key of %d bytes", n)
	}
	_, err = cl.Unlock(ctx, UnlockRequest{LUKSUUID: "u"}, make([]byte, 32))
	require.ErrorIs(t, err, ErrMalformed)
	// Nothing was sent for those: the stream is still in step.
	r, err := cl.Unlock(ctx, UnlockRequest{BootID: "b", LUKSUUID: "u"}, make([]byte, MaxKeySize))
	require.NoError(t, err)
	assert.Equal(t, StatusUnlocked, r.Status)
	require.NoError(t, closeFn())
}

func TestVersionMismatch(t *testing.T) {
	t.Run("instance refuses a newer keeper", func(t *testing.T) {
		h := &testHandler{}
		var out bytes.Buffer
		in := frame(TypeHello, `{"protocol":2,"program":"keeper 9"}`)
		err := Serve(context.Background(), rw{bytes.NewReader(in), &out}, h)
		require.ErrorIs(t, err, ErrVersion)
		// What the keeper reads back: an Error of code "version".
		cl := NewClient(rw{bytes.NewReader(out.Bytes()), io.Discard}, "k")
		_, err = cl.Hello(context.Background())
		require.ErrorIs(t, err, ErrVersion)
		require.ErrorIs(t, err, ErrRemote)
		assert.Equal(t, Hello{}, h.peer, "the handler never saw it")
	})
	t.Run("keeper refuses an older instance", func(t *testing.T) {
		cl := NewClient(rw{bytes.NewReader(frame(TypeHello, `{"protocol":0,"program":"x"}`)), io.Discard}, "k")
		_, err := cl.Hello(context.Background())
		require.ErrorIs(t, err, ErrVersion)
		_, err = cl.State(context.Background())
		require.ErrorIs(t, err, ErrNoHello)
	})
	t.Run("handler refuses the hello", func(t *testing.T) {
		var out bytes.Buffer
		err := Serve(context.Background(), rw{bytes.NewReader(frame(TypeHello, `{"protocol":1}`)), &out},
			&testHandler{helloErr: errors.New("not today")})
		require.Error(t, err)
		_, err = NewClient(rw{bytes.NewReader(out.Bytes()), io.Discard}, "k").Hello(context.Background())
		var re *Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, CodeRefused, re.Code)
	})
}

type rw struct {
	io.Reader
	io.Writer
}

func frame(t Type, payload string) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	b[4] = byte(t)
	return append(b, payload...)
}

func prefix(t Type, n uint32) []byte {
	b := make([]byte, 5)
	binary.BigEndian.PutUint32(b, n)
	b[4] = byte(t)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var goodHello = frame(TypeHello, `{"protocol":1,"program":"p"}`)

// TestClientMalformed: every way a hostile or broken instance can answer gives a typed
// error, never a panic.
func TestClientMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		call string // the call after a successful Hello ("" = Hello itself fails)
		want error
	}{
		{"empty stream", nil, "", io.EOF},
		{"cut prefix", []byte{0, 0, 0}, "", ErrTruncated},
		{"cut payload", frame(TypeHello, `{"protocol":1}`)[:9], "", ErrTruncated},
		{"unknown type", frame(0x42, "x"), "", ErrUnknownType},
		{"type zero", frame(0, ""), "", ErrUnknownType},
		{"hello too large", prefix(TypeHello, 4097), "", ErrFrameTooLarge},
		{"huge length", prefix(TypeHello, 0xffffffff), "", ErrFrameTooLarge},
		{"not json", frame(TypeHello, `protocol=1`), "", ErrMalformed},
		{"json null", frame(TypeHello, `null`), "", ErrMalformed},
		{"json array", frame(TypeHello, `[1]`), "", ErrMalformed},
		{"trailing data", frame(TypeHello, `{"protocol":1} {}`), "", ErrMalformed},
		{"bad utf8", frame(TypeHello, "{\"program\":\"\xff\"}"), "", ErrMalformed},
		{"wrong type for field", frame(TypeHello, `{"protocol":"1"}`), "", ErrMalformed},
		{"state first", frame(TypeState, `{}`), "", ErrUnexpected},
		{"key from instance", frame(TypeKey, "k"), "", ErrUnexpected},
		{"error bad code", frame(TypeError, `{"code":"boom","message":"x"}`), "", ErrMalformed},
		{"error frame", frame(TypeError, `{"code":"internal","message":"x"}`), "", ErrRemote},
		{"state request with payload", frame(TypeStateRequest, "x"), "", ErrFrameTooLarge},
		{"state wrong type", cat(goodHello, frame(TypeResult, `{"status":"unlocked"}`)), "state", ErrUnexpected},
		{"state too large", cat(goodHello, prefix(TypeState, 64<<10+1)), "state", ErrFrameTooLarge},
		{"state bad json", cat(goodHello, frame(TypeState, `{"mapped":"yes"}`)), "state", ErrMalformed},
		{"header too large", cat(goodHello, prefix(TypeHeader, MaxHeaderSize+1)), "header", ErrFrameTooLarge},
		{"header cut short", cat(goodHello, prefix(TypeHeader, MaxHeaderSize), []byte("LUKS")), "header", ErrTruncated},
		{"header wrong type", cat(goodHello, frame(TypeState, `{}`)), "header", ErrUnexpected},
		{"result bad status", cat(goodHello, frame(TypeResult, `{"status":"maybe"}`)), "unlock", ErrMalformed},
		{"result missing", cat(goodHello), "unlock", io.EOF},
		{"result as state", cat(goodHello, frame(TypeState, `{}`)), "unlock", ErrUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := clientCalls(tt.in, tt.call)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// clientCalls runs Hello and then call against a scripted instance; it returns the first error.
func clientCalls(in []byte, call string) error {
	ctx := context.Background()
	cl := NewClient(rw{bytes.NewReader(in), io.Discard}, "k")
	if _, err := cl.Hello(ctx); err != nil {
		return err
	}
	var err error
	switch call {
	case "state":
		_, err = cl.State(ctx)
	case "header":
		_, err = cl.Header(ctx)
	case "unlock":
		_, err = cl.Unlock(ctx, UnlockRequest{BootID: "b", LUKSUUID: "u"}, make([]byte, 32))
	}
	return err
}

// TestServerMalformed: every broken keeper stream ends Serve with a typed error and, when
// the bytes were the keeper's fault, a bad-request Error frame; the handler never runs.
func TestServerMalformed(t *testing.T) {
	unlock := frame(TypeUnlock, `{"boot_id":"b","luks_uuid":"u","key_size":4}`)
	tests := []struct {
		name    string
		in      []byte
		want    error
		errSent bool
	}{
		{"no hello", frame(TypeStateRequest, ""), ErrUnexpected, true},
		{"cut prefix", []byte{0}, ErrTruncated, false},
		{"unknown type", cat(goodHello, frame(0xee, "")), ErrUnknownType, true},
		{"huge hello", prefix(TypeHello, 1<<31), ErrFrameTooLarge, true},
		{"bad hello json", frame(TypeHello, "{"), ErrMalformed, true},
		{"request with payload", cat(goodHello, frame(TypeHeaderRequest, "x")), ErrFrameTooLarge, true},
		{"reply type as request", cat(goodHello, frame(TypeResult, `{}`)), ErrUnexpected, true},
		{"key without unlock", cat(goodHello, frame(TypeKey, "abcd")), ErrUnexpected, true},
		{"huge key", cat(goodHello, unlock, prefix(TypeKey, 1<<20)), ErrFrameTooLarge, true},
		{"key size differs", cat(goodHello, unlock, frame(TypeKey, "abc")), ErrKeySize, true},
		{"unlock then other", cat(goodHello, unlock, frame(TypeStateRequest, "")), ErrUnexpected, true},
		{"unlock then end", cat(goodHello, unlock), ErrTruncated, false},
		{"key cut short", cat(goodHello, unlock, frame(TypeKey, "abcd")[:7]), ErrTruncated, false},
		{"unlock key_size 0", cat(goodHello, frame(TypeUnlock, `{"boot_id":"b","luks_uuid":"u","key_size":0}`)), ErrKeySize, true},
		{"unlock key_size huge", cat(goodHello, frame(TypeUnlock, `{"boot_id":"b","luks_uuid":"u","key_size":99999999999}`)), ErrKeySize, true},
		{"unlock no boot id", cat(goodHello, frame(TypeUnlock, `{"luks_uuid":"u","key_size":4}`)), ErrMalformed, true},
		{"unlock bad json", cat(goodHello, frame(TypeUnlock, `{"boot_id":1}`)), ErrMalformed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &testHandler{result: Result{Status: StatusUnlocked}}
			var out bytes.Buffer
			err := Serve(context.Background(), rw{bytes.NewReader(tt.in), &out}, h)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, h.gotKey, "the handler never got a key")
			sent := strings.Contains(out.String(), `"code":"bad-request"`)
			assert.Equal(t, tt.errSent, sent, "Error frame sent: %q", out.String())
		})
	}
}

func TestServeCleanEnd(t *testing.T) {
	h := &testHandler{state: State{BootID: "b"}}
	var out bytes.Buffer
	in := cat(goodHello, frame(TypeStateRequest, ""))
	require.NoError(t, Serve(context.Background(), rw{bytes.NewReader(in), &out}, h))
	require.NoError(t, Serve(context.Background(), rw{bytes.NewReader(nil), &out}, h), "a keeper that closes before Hello")
}

// TestNoHugeAllocation: a length that claims the 32 MiB limit, followed by a few bytes,
// costs the reader far less than the claim.
func TestNoHugeAllocation(t *testing.T) {
	in := cat(goodHello, prefix(TypeHeader, MaxHeaderSize), bytes.Repeat([]byte{1}, 100))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := clientCalls(in, "header")
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrTruncated)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

// TestContextCancel: a read blocked on a silent peer returns when ctx ends.
func TestContextCancel(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b) // a peer that reads and never answers
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := NewClient(a, "k").Hello(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second)

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	c, d := net.Pipe()
	defer c.Close()
	go func() { done <- Serve(ctx, d, &testHandler{}) }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve ignored its context")
	}
}

// A handler error whose message JSON-escapes past the Error frame's limit is still sent,
// cut to fit, and the conversation goes on.
func TestErrorFrameFitsItsLimit(t *testing.T) {
	for name, msg := range map[string]string{
		"escapes": "device " + strings.Repeat("<\x01", 2000),
		"long":    strings.Repeat("é", 20000),
	} {
		t.Run(name, func(t *testing.T) {
			h := &testHandler{stateErr: errors.New(msg)}
			cl, closeFn := pair(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := cl.Hello(ctx)
			require.NoError(t, err)
			_, err = cl.State(ctx)
			require.ErrorIs(t, err, ErrRemote)
			_, err = cl.State(ctx)
			require.ErrorIs(t, err, ErrRemote, "the conversation went on")
			require.NoError(t, closeFn())
		})
	}
}

// A Result whose Reason is longer than the frame allows (a hook's output) is sent cut:
// the volume was unlocked, the keeper must hear so.
func TestResultFitsItsLimit(t *testing.T) {
	h := &testHandler{result: Result{Status: StatusUnlocked, Mounted: "/data", Reason: strings.Repeat("<x>", 17000)}}
	cl, closeFn := pair(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cl.Hello(ctx)
	require.NoError(t, err)
	r, err := cl.Unlock(ctx, UnlockRequest{BootID: "b", LUKSUUID: "u"}, make([]byte, 32))
	require.NoError(t, err)
	require.Equal(t, StatusUnlocked, r.Status)
	require.True(t, strings.HasSuffix(r.Reason, "…"))
	require.True(t, strings.HasPrefix(r.Reason, "<x><x>"))
	require.NoError(t, closeFn())
}
