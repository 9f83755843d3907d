//go:build linux

package vmtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSSHGateEnv(t *testing.T) {
	p := &plan{opts: Options{Net: &Net{GuestPort: 22}, SSH: &SSH{Gate: "/etc/gate"}}}
	env := p.env("nonce", "")
	assert.Equal(t, "1", env[envSSH])
	assert.Equal(t, "/etc/gate", env[envSSHGate])
	p.opts.SSH.Gate = ""
	_, ok := p.env("nonce", "")[envSSHGate]
	assert.False(t, ok, "no gate, no variable")
}

// The gate is waited for and its exit status decides whether sshd starts.
func TestRunSSHGate(t *testing.T) {
	assert.NoError(t, runSSHGate(""), "no gate")
	assert.NoError(t, runSSHGate("/bin/true"))
	assert.Error(t, runSSHGate("/bin/false"), "a failing gate keeps sshd down")
	assert.Error(t, runSSHGate("/nonexistent/gate"))
}
