package wire_test

import (
	"context"
	"fmt"
	"net"

	"github.com/cloudluks/cloudluks/keeper/wire"
)

// instance is a stand-in for encrypted-volume serve's handler.
type instance struct{}

func (instance) Hello(ctx context.Context, peer wire.Hello) (string, error) {
	return "encrypted-volume example", nil
}
func (instance) State(ctx context.Context) (wire.State, error) {
	return wire.State{BootID: "2f6c…", Serial: "vol0123456789abcdef0", LUKSVersion: 1, LUKSUUID: "8d9e…", Mapping: "data"}, nil
}
func (instance) Header(ctx context.Context) ([]byte, error) { return []byte("LUKS\xba\xbe"), nil }
func (instance) Unlock(ctx context.Context, req wire.UnlockRequest, key []byte) (wire.Result, error) {
	// Check req against the live boot id and header, then map with key (do not keep it).
	return wire.Result{Status: wire.StatusUnlocked, Mounted: "/data", HooksOK: true}, nil
}

func Example() {
	ctx := context.Background()
	keeperEnd, instanceEnd := net.Pipe() // in real life: an SSH session's stdin/stdout
	go wire.Serve(ctx, instanceEnd, instance{})
	defer keeperEnd.Close()

	cl := wire.NewClient(keeperEnd, "keeper example")
	peer, err := cl.Hello(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := cl.State(ctx)
	hdr, _ := cl.Header(ctx)
	fmt.Println(peer.Program, st.Serial, len(hdr))

	key := make([]byte, 32) // from luks.Unlock of hdr, at the keeper's site
	defer clear(key)
	r, err := cl.Unlock(ctx, wire.UnlockRequest{BootID: st.BootID, LUKSUUID: st.LUKSUUID}, key)
	fmt.Println(r.Status, r.Mounted, err)
	// Output:
	// encrypted-volume example vol0123456789abcdef0 6
	// unlocked /data <nil>
}
