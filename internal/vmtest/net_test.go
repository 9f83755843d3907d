//go:build linux

package vmtest_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

const netGuestPort = 2222

// TestVMNet boots a guest with Options.Net and talks to a listener in it from the host through
// the forwarded port on 127.0.0.1: a greeting one way, a line carrying a host-made token back,
// which the guest checks. The guest cannot reach a listener on the host's 127.0.0.1 (slirp
// would map 10.0.2.2 to it without restrict=on).
func TestVMNet(t *testing.T) {
	var port int
	var token, hostListener string
	if !vmtest.InVM() {
		port = vmtest.FreePort(t)
		token = fmt.Sprintf("token-%d", time.Now().UnixNano())
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		hostListener = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("the guest reached the host\n"))
				c.Close()
			}
		}()
	}
	hostDone := make(chan error, 1)
	if !vmtest.InVM() {
		go func() { hostDone <- talkToGuest(fmt.Sprintf("127.0.0.1:%d", port), token, 2*time.Minute) }()
	}
	if !vmtest.Run(t, vmtest.Options{
		Net: &vmtest.Net{GuestPort: netGuestPort, HostPort: port},
		Env: map[string]string{"VMTEST_TOKEN": token, "VMTEST_HOST_PORT": hostListener},
	}) {
		select {
		case err := <-hostDone:
			require.NoError(t, err, "the host reached the guest's listener")
		case <-time.After(10 * time.Second):
			t.Fatal("the host side never finished talking to the guest")
		}
		return
	}

	ifc, err := net.InterfaceByName("eth0")
	require.NoError(t, err)
	assert.NotZero(t, ifc.Flags&net.FlagUp, "eth0 is up")
	addrs, err := ifc.Addrs()
	require.NoError(t, err)
	var v4 []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			v4 = append(v4, a.String())
		}
	}
	assert.Equal(t, []string{vmtest.GuestAddr + "/24"}, v4)

	t.Run("isolated", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", "10.0.2.2:"+os.Getenv("VMTEST_HOST_PORT"), 3*time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			b, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			assert.Empty(t, b, "the guest must not reach the host's 127.0.0.1")
		}
	})

	l, err := net.Listen("tcp", fmt.Sprintf(":%d", netGuestPort))
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.(*net.TCPListener).SetDeadline(time.Now().Add(90*time.Second)))
	// Connections the host made before the listener existed may be queued in qemu and
	// abandoned by the host meanwhile: serve until one of them carries the token.
	for {
		c, err := l.Accept()
		require.NoError(t, err, "a connection from the host through the forward")
		line, err := greet(c)
		if err != nil {
			t.Logf("guest: connection from %s: %v (a stale one; next)", c.RemoteAddr(), err)
			continue
		}
		t.Logf("guest: connection from %s", c.RemoteAddr())
		assert.Equal(t, "echo "+os.Getenv("VMTEST_TOKEN")+"\n", line)
		return
	}
}

func greet(c net.Conn) (string, error) {
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(c, "hello from the guest\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// talkToGuest dials addr until the guest's listener answers (before it listens, qemu accepts
// and then closes the connection), reads the greeting and sends the token.
func talkToGuest(addr, token string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		greeting, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(greeting, "hello from the guest") {
			c.Close()
			last = fmt.Errorf("greeting %q: %v", greeting, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = fmt.Fprintf(c, "echo %s\n", token)
		c.Close()
		return err
	}
	return fmt.Errorf("no answer from %s within %s: %v", addr, limit, last)
}
