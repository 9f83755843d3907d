package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

var sentinels = []error{ErrUnknownType, ErrFrameTooLarge, ErrTruncated, ErrUnexpected,
	ErrMalformed, ErrVersion, ErrKeySize, ErrRemote, io.EOF}

func typed(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzClient feeds hostile instance bytes to the keeper's end.
func FuzzClient(f *testing.F) {
	f.Add(cat(goodHello, frame(TypeState, `{"boot_id":"b","mapped":true}`), frame(TypeHeader, "LUKS\xba\xbe"), frame(TypeResult, `{"status":"unlocked","hooks_ok":true}`)))
	f.Add(cat(goodHello, frame(TypeError, `{"code":"refused","message":"no"}`)))
	f.Add(frame(TypeHello, `{"protocol":2}`))
	f.Add(cat(goodHello, prefix(TypeHeader, MaxHeaderSize), []byte("LUKS")))
	f.Add(cat(goodHello, frame(TypeKey, "secret")))
	f.Add(prefix(TypeState, 0xffffffff))
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		cl := NewClient(rw{bytes.NewReader(in), io.Discard}, "k")
		_, err := cl.Hello(ctx)
		if err == nil {
			_, err = cl.State(ctx)
		}
		if err == nil {
			var hdr []byte
			hdr, err = cl.Header(ctx)
			if len(hdr) > len(in) {
				t.Fatalf("header of %d bytes from %d input bytes", len(hdr), len(in))
			}
		}
		if err == nil {
			var r Result
			r, err = cl.Unlock(ctx, UnlockRequest{BootID: "b", LUKSUUID: "u"}, make([]byte, 32))
			if err == nil && r.validate() != nil {
				t.Fatalf("invalid Result accepted: %+v", r)
			}
		}
		if err != nil && !typed(err) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// FuzzServer feeds hostile keeper bytes to the instance's end and checks that what it
// writes back is a stream of well-formed frames, and that a key reaches the handler only
// after a valid Unlock announcing its length.
func FuzzServer(f *testing.F) {
	unlock := frame(TypeUnlock, `{"boot_id":"b","luks_uuid":"u","key_size":4}`)
	f.Add(cat(goodHello, frame(TypeStateRequest, ""), frame(TypeHeaderRequest, ""), unlock, frame(TypeKey, "abcd")))
	f.Add(cat(goodHello, unlock, frame(TypeKey, "abc")))
	f.Add(cat(goodHello, frame(TypeKey, "abcd")))
	f.Add(frame(TypeHello, `{"protocol":7}`))
	f.Add(cat(goodHello, prefix(TypeUnlock, 0xffffffff)))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		h := &testHandler{state: State{BootID: "b"}, header: []byte("LUKS"), result: Result{Status: StatusUnlocked}}
		var out bytes.Buffer
		err := Serve(context.Background(), rw{bytes.NewReader(in), &out}, h)
		if err != nil && !typed(err) {
			t.Fatalf("untyped error: %v", err)
		}
		if h.gotKey != nil && len(h.gotKey) != h.gotReq.KeySize {
			t.Fatalf("key of %d bytes for key_size %d", len(h.gotKey), h.gotReq.KeySize)
		}
		if h.keySlice != nil && !bytes.Equal(h.keySlice, make([]byte, len(h.keySlice))) {
			t.Fatal("key buffer not zeroed")
		}
		c := conn{rw: rw{bytes.NewReader(out.Bytes()), io.Discard}}
		for {
			ty, p, err := c.readFrame(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Serve wrote a bad frame: %v", err)
			}
			if ty == TypeError {
				var e Error
				if err := decode(ty, p, &e); err != nil || e.validate() != nil {
					t.Fatalf("bad Error frame %q", p)
				}
			}
		}
	})
}
