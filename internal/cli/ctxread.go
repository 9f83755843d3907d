package cli

import (
	"context"
	"errors"
)

// errStopped is readUntil's answer when ctx ended before the read did.
var errStopped = errors.New("stopped")

// readUntil runs read on a goroutine and returns what it returns, unless ctx (nil: never)
// is done first: then it returns errStopped at once, and the bytes the abandoned read
// returns later are zeroed. A read blocked in open(2) of a FIFO or in read(2) of a pipe or
// terminal cannot be interrupted; this is how a signal still ends the program's wait.
func readUntil(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	if ctx == nil {
		return read()
	}
	type result struct {
		p   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := read()
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-ctx.Done():
		go func() { clear((<-ch).p) }()
		return nil, errStopped
	}
}
