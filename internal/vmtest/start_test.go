//go:build linux

package vmtest_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

const startGuestPort = 7000

// The guest of TestStart: count boots on disk 0, then answer one connection with the boot id
// and the count, and do what the host says: "stay" (keep running until killed), "ok" (return
// nil: power off) or "fail" (return an error).
func init() { vmtest.GuestMain("boot-counter", bootCounter) }

func bootCounter() error {
	f, err := os.OpenFile(vmtest.GuestDisk(0), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	var b [8]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return err
	}
	count := binary.BigEndian.Uint64(b[:]) + 1
	binary.BigEndian.PutUint64(b[:], count)
	if _, err := f.WriteAt(b[:], 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return err
	}
	fmt.Printf("boot-counter: boot %d ready\n", count)
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", startGuestPort))
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "%s %d\n", strings.TrimSpace(string(id)), count)
		cmd, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		switch strings.TrimSpace(cmd) {
		case "stay":
		case "ok":
			return nil
		case "fail":
			return errors.New("told to fail")
		default:
			fmt.Printf("boot-counter: stale connection (%q, %v)\n", cmd, err)
		}
	}
}

// TestStart drives one VM through three boots from the same disk: a kill without warning, a
// guest function that returns nil and one that fails. Each boot has a new boot id and sees
// what the previous boots wrote.
func TestStart(t *testing.T) {
	vm := vmtest.Start(t, vmtest.Options{
		Disks:   []vmtest.Disk{{Path: vmtest.NewDiskImage(t, 1<<20)}},
		Net:     &vmtest.Net{GuestPort: startGuestPort},
		Guest:   "boot-counter",
		Timeout: 2 * time.Minute,
	})
	require.True(t, strings.HasPrefix(vm.Addr(), "127.0.0.1:"), vm.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ask := func(cmd string) (bootID string, count int) {
		t.Helper()
		require.NoError(t, vm.WaitConsole(ctx, "boot-counter: boot"))
		for ctx.Err() == nil {
			c, err := net.DialTimeout("tcp", vm.Addr(), 5*time.Second)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, err = fmt.Fprintf(c, "%s\n", cmd)
					c.Close()
					require.NoError(t, err)
					_, err = fmt.Sscanf(line, "%s %d", &bootID, &count)
					require.NoError(t, err, "reply %q", line)
					return bootID, count
				}
				c.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("no answer from the guest at %s", vm.Addr())
		return "", 0
	}

	id1, n1 := ask("stay")
	assert.Equal(t, 1, n1)
	assert.Equal(t, 1, vm.Boots())
	assert.Contains(t, vm.BootConsole(), "boot-counter: boot 1 ready")
	vm.Kill()
	assert.ErrorIs(t, vm.Wait(), vmtest.ErrVMKilled)

	vm.Boot()
	id2, n2 := ask("ok")
	assert.Equal(t, 2, n2, "the second boot sees the first boot's write")
	assert.NotEqual(t, id1, id2, "a new boot id")
	assert.NoError(t, vm.Wait(), "the guest function returned nil: a clean power-off")
	assert.NotContains(t, vm.BootConsole(), "boot 1 ready", "BootConsole is this boot's only")

	vm.Boot()
	id3, n3 := ask("fail")
	assert.Equal(t, 3, n3)
	assert.NotEqual(t, id2, id3)
	err := vm.Wait()
	require.Error(t, err)
	assert.NotErrorIs(t, err, vmtest.ErrVMKilled)
	assert.Contains(t, vm.Console(), "told to fail")
	for i := 1; i <= 3; i++ {
		assert.Contains(t, vm.Console(), fmt.Sprintf("boot-counter: boot %d ready", i), "Console keeps every boot")
	}
	assert.Equal(t, 3, vm.Boots())
}
