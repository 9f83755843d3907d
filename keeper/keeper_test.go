package keeper_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper"
)

type noSecrets struct{}

func (noSecrets) Passphrase(string) ([]byte, error) { return nil, keeper.ErrNoPassphrase }

func goodTarget() keeper.Target {
	return keeper.Target{
		Name: "web-1/data", InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0",
		Mapping: "data", MountPoint: "/data", LUKSUUID: "6f1a0c8e-0000-4000-8000-000000000000",
		SSH: keeper.SSHConfig{Addr: "127.0.0.1:2222", User: "keeper", KeyFile: "id", KnownHosts: []string{"kh"}},
	}
}

func TestNewValidates(t *testing.T) {
	opts := keeper.Options{NoEC2: true, Secrets: noSecrets{}}
	_, err := keeper.New(opts, []keeper.Target{goodTarget()})
	require.NoError(t, err)

	for name, mut := range map[string]func(*keeper.Target){
		"instance": func(t *keeper.Target) { t.InstanceID = "web-1" },
		"volume":   func(t *keeper.Target) { t.VolumeID = "data" },
		"uuid":     func(t *keeper.Target) { t.LUKSUUID = "" },
		"user":     func(t *keeper.Target) { t.SSH.User = "" },
		"no auth":  func(t *keeper.Target) { t.SSH.KeyFile = "" },
		"no pin":   func(t *keeper.Target) { t.SSH.KnownHosts = nil },
		"no addr":  func(t *keeper.Target) { t.SSH.Addr = "" }, // NoEC2: nowhere to learn it
		"bad port": func(t *keeper.Target) { t.SSH.Port = 70000 },
		"jump noadr": func(t *keeper.Target) {
			t.SSH.JumpHost = &keeper.SSHConfig{User: "u", Agent: true, KnownHosts: []string{"k"}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			tg := goodTarget()
			mut(&tg)
			_, err := keeper.New(opts, []keeper.Target{tg})
			require.ErrorIs(t, err, keeper.ErrInvalid)
		})
	}
	_, err = keeper.New(opts, []keeper.Target{goodTarget(), goodTarget()})
	require.ErrorIs(t, err, keeper.ErrInvalid, "duplicate")
	_, err = keeper.New(keeper.Options{Secrets: noSecrets{}}, nil)
	require.ErrorIs(t, err, keeper.ErrInvalid, "no EC2 without NoEC2")
	_, err = keeper.New(keeper.Options{NoEC2: true}, nil)
	require.ErrorIs(t, err, keeper.ErrInvalid, "no secrets")
}

func TestRefusalsMatchErrRefused(t *testing.T) {
	for _, e := range []error{keeper.ErrNotRunning, keeper.ErrNotAttached, keeper.ErrSerialMismatch,
		keeper.ErrUUIDMismatch, keeper.ErrTargetMismatch, keeper.ErrBootUnlocked, keeper.ErrAttempts,
		keeper.ErrInstanceRefused} {
		require.ErrorIs(t, e, keeper.ErrRefused, e.Error())
		require.NotErrorIs(t, keeper.ErrRefused, e, "the umbrella is not each refusal")
	}
	require.NotErrorIs(t, keeper.ErrHostKeyChanged, keeper.ErrRefused)
}
