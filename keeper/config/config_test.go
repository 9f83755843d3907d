package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/config"
)

var update = flag.Bool("update", false, "rewrite the golden error messages in testdata/errors")

func TestGood(t *testing.T) {
	c, err := config.Load("testdata/good.toml")
	require.NoError(t, err)
	assert.Equal(t, "/etc/keeper/vault.age", c.Vault)
	assert.Equal(t, 4, c.Concurrency)
	assert.Equal(t, config.DefaultAttemptsPerBoot, c.AttemptsPerBoot)
	assert.Equal(t, 10*time.Second, c.Keepalive.Duration)
	assert.Equal(t, config.DefaultPollInterval, c.PollInterval.Duration)
	assert.Equal(t, config.DefaultStatusFile, c.StatusFile)
	assert.Equal(t, config.DefaultRescueProbes, c.RescueProbes)
	assert.Equal(t, config.DefaultRescueProbeInterval, c.RescueProbeInterval.Duration)
	require.Len(t, c.Targets, 3)

	web := c.Targets[0]
	assert.Equal(t, "web-1/data", web.Label())
	assert.Equal(t, "keeper", web.SSH.User)
	assert.Equal(t, "/etc/keeper/id_ed25519", web.SSH.Key)
	assert.Equal(t, []string{"/etc/keeper/known_hosts"}, web.SSH.KnownHosts, "the keeper's known_hosts by default")
	assert.Equal(t, 22, web.SSH.Port)
	assert.True(t, c.Rescue(web))

	second := c.Targets[1]
	assert.Equal(t, "i-0fedcba9876543210/vol-01234567", second.Label())
	assert.Equal(t, "127.0.0.1:2222", second.SSH.Address)
	assert.True(t, second.SSH.UsesAgent())
	assert.Equal(t, "/home/op/.ssh/id_ed25519", second.SSH.Key)
	assert.Empty(t, second.SSH.KnownHosts, "an explicit empty list: host certificates only")
	assert.Equal(t, []string{"/etc/keeper/host_ca.pub"}, second.SSH.HostCA)
	assert.False(t, c.Rescue(second))

	db := c.Targets[2]
	assert.Equal(t, map[string]string{"Role": "db", "Env": "prod"}, db.InstanceTags)
	assert.Equal(t, map[string]string{"Name": "db-data"}, db.VolumeTags)
	assert.True(t, db.SSH.UsesPrivateIP())
	require.NotNil(t, db.SSH.JumpHost)
	assert.Equal(t, config.Jump{Address: "bastion.example.net:22", User: "jump", Agent: true, KnownHosts: []string{"/etc/keeper/known_hosts"}}, *db.SSH.JumpHost)
}

// TestErrors runs every testdata/errors/NAME.toml and compares the message with NAME.err.
func TestErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.toml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".toml"), func(t *testing.T) {
			_, err := config.Load(f)
			require.Error(t, err)
			require.True(t, errors.Is(err, config.ErrSyntax) || errors.Is(err, config.ErrUnknownKey) || errors.Is(err, config.ErrInvalid), "%v", err)
			golden := strings.TrimSuffix(f, ".toml") + ".err"
			got := err.Error() + "\n"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)
		})
	}
}

func TestLimits(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.toml")
	require.NoError(t, os.WriteFile(big, []byte("# "+strings.Repeat("x", config.MaxFileSize)+"\n"), 0o644))
	_, err := config.Load(big)
	require.ErrorIs(t, err, config.ErrTooLarge)
	_, err = config.Load(filepath.Join(t.TempDir(), "missing.toml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// Parse's result, written back as TOML, parses to the same configuration: nothing the
// validation fills in (defaults, merged [ssh]) is lost or changed on the way.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	more, _ := filepath.Glob("testdata/errors/*.toml")
	for _, p := range append(files, more...) {
		data, err := os.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.toml", data)
		if err != nil {
			if !errors.Is(err, config.ErrSyntax) && !errors.Is(err, config.ErrUnknownKey) && !errors.Is(err, config.ErrInvalid) && !errors.Is(err, config.ErrTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(c.Targets) == 0 || c.Vault == "" {
			t.Fatalf("accepted without targets or vault: %+v", c)
		}
		var out strings.Builder
		if err := toml.NewEncoder(&out).Encode(c); err != nil {
			t.Fatalf("encode: %v", err)
		}
		c2, err := config.Parse("again.toml", []byte(out.String()))
		if err != nil {
			t.Fatalf("re-parse of\n%s\n: %v", out.String(), err)
		}
		assert.Equal(t, c, c2)
	})
}

// An explicit zero or a negative value is refused, not turned into the default; a volume is
// served by one target; command holds nothing a shell would expand.
func TestExplicitValues(t *testing.T) {
	base := "vault = \"/v\"\nknown_hosts = \"/k\"\n[ssh]\nuser = \"u\"\nkey = \"/id\"\n"
	tgt := "[[target]]\ninstance = \"i-0123456789abcdef0\"\nvolume = \"vol-0123456789abcdef0\"\n"
	for _, extra := range []string{"concurrency = 0\n", "attempts_per_boot = 0\n", "attempts_per_boot = -1\n", "keepalive = \"0s\"\n", "keepalive = \"-5s\"\n", "poll_interval = \"0s\"\n",
		"rescue_probes = 0\n", "rescue_probes = -3\n", "rescue_probes = 21\n", "rescue_probe_interval = \"0s\"\n", "rescue_probe_interval = \"11m\"\n", "rescue_probe_interval = \"3\"\n", "rescue_probes = \"3\"\n",
		// One dial is no probe; probes that outlast the rescue; sub-second intervals.
		"rescue_probes = 1\n", "rescue_probes = 20\nrescue_probe_interval = \"10m\"\n", "rescue_probes = 16\nrescue_probe_interval = \"1m\"\n",
		"rescue_probe_interval = \"1s1ns\"\n", "rescue_probe_interval = \"1.5s\"\n"} {
		_, err := config.Parse("k.toml", []byte(extra+base+tgt))
		assert.ErrorIs(t, err, config.ErrInvalid, "%q", extra)
	}
	_, err := config.Parse("k.toml", []byte(base+"port = 0\n"+tgt))
	assert.ErrorIs(t, err, config.ErrInvalid, "[ssh] port = 0")
	_, err = config.Parse("k.toml", []byte(base+tgt+"  [target.ssh]\n  port = 0\n"))
	assert.ErrorIs(t, err, config.ErrInvalid, "[target.ssh] port = 0")
	c, err := config.Parse("k.toml", []byte(base+tgt))
	require.NoError(t, err)
	assert.Equal(t, config.DefaultConcurrency, c.Concurrency, "absent: the default")
	assert.Equal(t, config.DefaultPort, c.Targets[0].SSH.Port)
	c, err = config.Parse("k.toml", []byte("rescue_probes = 2\nrescue_probe_interval = \"2s\"\n"+base+tgt))
	require.NoError(t, err)
	assert.Equal(t, 2, c.RescueProbes)
	assert.Equal(t, 2*time.Second, c.RescueProbeInterval.Duration)
	_, err = config.Parse("k.toml", []byte("rescue_probes = 15\nrescue_probe_interval = \"1m\"\n"+base+tgt))
	require.NoError(t, err, "14 minutes of probes fit in the rescue's 15")
	_, err = config.Parse("k.toml", []byte("rescue_probes = 16\nrescue_probe_interval = \"1m\"\n"+base+tgt))
	assert.ErrorContains(t, err, "16 probes 1m0s apart take 15m0s, the whole rescue may take 15m0s")
	_, err = config.Parse("k.toml", []byte("rescue_probe = 1\n"+base+tgt))
	assert.ErrorIs(t, err, config.ErrUnknownKey, "a misspelt rescue_probes")

	_, err = config.Parse("k.toml", []byte(base+tgt+"name = \"a\"\n"+tgt+"name = \"b\"\n"))
	assert.ErrorContains(t, err, "a volume is served once")

	for cmd, ok := range map[string]bool{
		"/usr/local/sbin/encrypted-volume serve --volume-id vol-0123 --name data --mount /data": true,
		"encrypted-volume serve; curl x | sh":                                                   false, "serve $(id)": false, "serve `id`": false, "serve > /tmp/x": false, "serve 'a b'": false, "serve *": false,
	} {
		_, err := config.Parse("k.toml", []byte(base+"command = \""+cmd+"\"\n"+tgt))
		if ok {
			assert.NoError(t, err, cmd)
		} else {
			assert.ErrorIs(t, err, config.ErrInvalid, cmd)
		}
	}
}
