package awstest

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listensOn tells the process that holds a listening port from one that does not, and a
// port nobody listens on.
func TestListensOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	ok, err := listensOn(os.Getpid(), port)
	require.NoError(t, err)
	assert.True(t, ok, "this process listens on %d", port)

	other := exec.Command("sleep", "60")
	require.NoError(t, other.Start())
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	ok, err = listensOn(other.Process.Pid, port)
	require.NoError(t, err)
	assert.False(t, ok, "another process answering on the port is not ours")

	free := FreePort(t)
	ok, err = listensOn(os.Getpid(), free)
	require.NoError(t, err)
	assert.False(t, ok, "nobody listens on %d", free)
}
