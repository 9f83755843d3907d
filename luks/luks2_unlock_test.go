package luks

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// l2Config is one image of the LUKS2 matrix, made by real cryptsetup 2.6.1.
type l2Config struct {
	name     string
	format   []string // luksFormat options beyond --type luks2
	detached bool
	extra    func(t *testing.T, img, hdr, dir string) // more keyslots, priorities
}

var argonSmall = []string{"--pbkdf-memory", "32", "--pbkdf-force-iterations", "4"}

func l2Matrix() []l2Config {
	with := func(a []string, b ...string) []string { return append(append([]string{}, a...), b...) }
	return []l2Config{
		{name: "pbkdf2-sha1-256-512", format: []string{"--pbkdf", "pbkdf2", "--hash", "sha1", "--pbkdf-force-iterations", "1000", "--key-size", "256", "--sector-size", "512"}},
		{name: "pbkdf2-sha256-512-4096", format: []string{"--pbkdf", "pbkdf2", "--hash", "sha256", "--pbkdf-force-iterations", "1000", "--key-size", "512", "--sector-size", "4096"}},
		{name: "pbkdf2-sha512-512", format: []string{"--pbkdf", "pbkdf2", "--hash", "sha512", "--pbkdf-force-iterations", "1000", "--key-size", "512"}},
		{name: "argon2i-256-4096", format: with([]string{"--pbkdf", "argon2i", "--key-size", "256", "--sector-size", "4096"}, argonSmall...)},
		{name: "argon2id-512-meta64k", format: with([]string{"--pbkdf", "argon2id", "--key-size", "512", "--luks2-metadata-size", "64k"}, argonSmall...)},
		{name: "argon2id-cbc-essiv-meta1m", format: with([]string{"--pbkdf", "argon2id", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--luks2-metadata-size", "1m", "--luks2-keyslots-size", "2m"}, argonSmall...)},
		{name: "argon2id-detached", format: with([]string{"--pbkdf", "argon2id"}, argonSmall...), detached: true},
		{name: "several-keyslots", format: with([]string{"--pbkdf", "argon2id"}, argonSmall...),
			extra: func(t *testing.T, img, hdr, dir string) {
				kf := writeKeyFile(t, dir, "k0", []byte("pass0"))
				mustCS(t, []byte("pass3"), "luksAddKey", "-q", "--key-file", kf, "--key-slot", "3", "--pbkdf", "pbkdf2", "--hash", "sha512", "--pbkdf-force-iterations", "1000", hdr, "-")
				mustCS(t, []byte("pass1"), "luksAddKey", "-q", "--key-file", kf, "--key-slot", "1", "--pbkdf", "argon2i", "--pbkdf-memory", "64", "--pbkdf-force-iterations", "5", "--pbkdf-parallel", "1", hdr, "-")
				mustCS(t, nil, "config", "--priority", "prefer", "--key-slot", "3", hdr)
				mustCS(t, nil, "config", "--priority", "ignore", "--key-slot", "1", hdr)
			}},
	}
}

type l2Img struct {
	cfg       l2Config
	img, hdr  string // hdr == img unless detached
	dir       string
	volumeKey []byte
}

func makeL2(t *testing.T, c l2Config) l2Img {
	dir := t.TempDir()
	img := newImage(t, dir, "disk.img", 24<<20)
	hdr := img
	args := []string{"luksFormat", "--type", "luks2", "-q"}
	if c.detached {
		hdr = newImage(t, dir, "hdr.img", 16<<20)
		args = append(args, "--header", hdr)
	}
	args = append(append(args, c.format...), img, "-")
	mustCS(t, []byte("pass0"), args...)
	if c.extra != nil {
		c.extra(t, img, hdr, dir)
	}
	return l2Img{cfg: c, img: img, hdr: hdr, dir: dir, volumeKey: csVolumeKey(t, hdr, []byte("pass0"))}
}

// csVolumeKey asks cryptsetup for the volume key (passphrase on stdin).
func csVolumeKey(t *testing.T, hdr string, pass []byte) []byte {
	out := mustCS(t, pass, "luksDump", "--dump-volume-key", "-q", "--key-file", "-", hdr)
	i := strings.Index(out, "MK dump:")
	require.GreaterOrEqual(t, i, 0, out)
	var key []byte
	for _, f := range strings.Fields(out[i+len("MK dump:"):]) {
		b, err := hex.DecodeString(f)
		require.NoError(t, err)
		key = append(key, b...)
	}
	return key
}

func TestUnlock2Matrix(t *testing.T) {
	cryptsetupBin(t)
	ctx := context.Background()
	for _, c := range l2Matrix() {
		t.Run(c.name, func(t *testing.T) {
			im := makeL2(t, c)
			f, err := os.Open(im.hdr)
			require.NoError(t, err)
			defer f.Close()

			h, vk, slot, err := Unlock2(ctx, f, []byte("pass0"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, 0, slot)
			assert.Equal(t, im.volumeKey, vk.Bytes(), "volume key equals cryptsetup --dump-volume-key")
			vk.Wipe()

			m, vk, _, err := UnlockAny(ctx, f, []byte("pass0"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, 2, m.LUKSVersion())
			assert.Equal(t, im.volumeKey, vk.Bytes())
			ok, err := m.verifyKey(ctx, vk.Bytes())
			require.NoError(t, err)
			assert.True(t, ok)
			require.NoError(t, CheckVolumeKey(m, vk))
			flipped := bytes.Clone(vk.Bytes())
			flipped[0] ^= 1
			assert.ErrorIs(t, CheckVolumeKey(m, NewVolumeKey(flipped)), ErrVolumeKeyMismatch)
			assert.ErrorIs(t, CheckVolumeKey(m, NewVolumeKey(flipped[1:])), ErrVolumeKeyMismatch)
			assert.ErrorIs(t, CheckVolumeKey((*Header2)(nil), vk), ErrInvalidParameter)

			_, _, _, err = Unlock2(ctx, f, []byte("wrong"), UnlockOptions{})
			assert.ErrorIs(t, err, ErrWrongPassphrase)
			assert.NotEqual(t, 0, runCS(t, []byte("wrong"), "open", "--test-passphrase", "--key-file", "-", im.hdr).code)

			seg, err := h.DataSegment()
			require.NoError(t, err)
			assert.Equal(t, 2, seg.Version)
			assert.Equal(t, len(im.volumeKey), seg.KeyBytes)
			dump := mustCS(t, nil, "luksDump", im.hdr)
			assert.Contains(t, dump, "\tcipher: "+seg.Cipher+"\n")
			assert.Contains(t, dump, "\tsector: "+strconv.Itoa(seg.SectorSize)+" [bytes]\n")
			assert.Contains(t, dump, "\toffset: "+strconv.Itoa(int(seg.Offset))+" [bytes]\n")
			assert.Equal(t, IsLUKS(f), true)
			assert.True(t, IsLUKSVersion(f, 2))
			assert.False(t, IsLUKSVersion(f, 1))
		})
	}
}

func jsonNum(n int) json.Number { return json.Number(strconv.Itoa(n)) }

// TestUnlock2Priorities: "prefer" slots first, "ignore" slots only when named, both as
// cryptsetup open --test-passphrase decides.
func TestUnlock2Priorities(t *testing.T) {
	cryptsetupBin(t)
	ctx := context.Background()
	var c l2Config
	for _, x := range l2Matrix() {
		if x.name == "several-keyslots" {
			c = x
		}
	}
	im := makeL2(t, c)
	f, err := os.Open(im.hdr)
	require.NoError(t, err)
	defer f.Close()
	cs := func(pass string, slot ...string) bool {
		args := append([]string{"open", "--test-passphrase", "--key-file", "-"}, slot...)
		return runCS(t, []byte(pass), append(args, im.hdr)...).code == 0
	}
	for _, tc := range []struct {
		pass string
		slot *int
		want int // slot, or -1 refused
	}{
		{"pass0", nil, 0},
		{"pass3", nil, 3},
		{"pass1", nil, -1}, // priority ignore: not tried without --key-slot
		{"pass1", Slot(1), 1},
		{"pass3", Slot(0), -1},
		{"pass0", Slot(0), 0},
	} {
		_, vk, slot, err := Unlock2(ctx, f, []byte(tc.pass), UnlockOptions{Keyslot: tc.slot})
		var args []string
		if tc.slot != nil {
			args = []string{"--key-slot", strconv.Itoa(*tc.slot)}
		}
		assert.Equal(t, tc.want >= 0, cs(tc.pass, args...), "cryptsetup decision for %s %v", tc.pass, args)
		if tc.want < 0 {
			assert.ErrorIs(t, err, ErrWrongPassphrase, "%s %v", tc.pass, args)
			continue
		}
		require.NoError(t, err, "%s %v", tc.pass, args)
		assert.Equal(t, tc.want, slot)
		assert.Equal(t, im.volumeKey, vk.Bytes())
	}
	h, err := ReadHeader2(f)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 3, 1}, h.keyslotOrder(), "slots in the order cryptsetup added them")
}

// TestUnlock2Requirements: an unknown mandatory requirement loads and unlocks (isLuks,
// luksDump, open --test-passphrase) but is not mapped, here as in cryptsetup.
func TestUnlock2Requirements(t *testing.T) {
	im := newL2Image(baseImage2(t))
	im.edit(t, func(m map[string]any) {
		obj(m, "config")["requirements"] = map[string]any{"mandatory": []any{"future-feature"}}
	})
	im.sealBoth()
	p := filepath.Join(t.TempDir(), "req.img")
	require.NoError(t, os.WriteFile(p, im.b, 0o600))
	h, vk, _, err := Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass0"), UnlockOptions{})
	require.NoError(t, err, "cryptsetup open --test-passphrase accepts it too")
	vk.Wipe()
	assert.Equal(t, 0, runCS(t, []byte("pass0"), "open", "--test-passphrase", "--key-file", "-", p).code)
	_, err = h.DataSegment()
	assert.ErrorIs(t, err, ErrUnmetRequirements, "but it must not be mapped")
	// The unchanged base image unlocks through both keyslots.
	for i, pass := range []string{"pass0", "pass1"} {
		_, vk, slot, err := Unlock2(context.Background(), bytes.NewReader(baseImage2(t)), []byte(pass), UnlockOptions{})
		require.NoError(t, err)
		assert.Equal(t, i, slot)
		vk.Wipe()
	}
}

// TestUnlock2HostileKDF: argon2 parameters that would make x/crypto/argon2 panic or
// allocate without bound are refused before the call.
func TestUnlock2HostileKDF(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]any
		want error
	}{
		{"time-zero", map[string]any{"time": 0}, ErrCorruptKeyslot},
		{"cpus-zero", map[string]any{"cpus": 0}, ErrCorruptKeyslot},
		{"cpus-huge", map[string]any{"cpus": 1 << 24}, ErrCorruptKeyslot},
		{"cpus-256", map[string]any{"cpus": 256, "memory": 4096}, ErrWrongPassphrase}, // computed, not the slot's cost
		{"memory-tiny", map[string]any{"memory": 1}, ErrCorruptKeyslot},
		{"memory-huge", map[string]any{"memory": 1<<32 - 1}, ErrWorkLimit},
		{"work-huge", map[string]any{"memory": 1 << 22, "time": 1 << 20}, ErrWorkLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := newL2Image(baseImage2(t))
			im.edit(t, func(m map[string]any) {
				kdf := obj(m, "keyslots", "0", "kdf")
				for k, v := range tc.set {
					kdf[k] = jsonNum(v.(int))
				}
			})
			im.sealBoth()
			_, _, _, err := Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass0"), UnlockOptions{Keyslot: Slot(0)})
			assert.ErrorIs(t, err, tc.want)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err := Unlock2(ctx, bytes.NewReader(baseImage2(t)), []byte("pass0"), UnlockOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

// TestDump2Matrix: Dump and DumpVolumeKey2 print exactly what cryptsetup 2.6.1's luksDump
// and luksDump --dump-volume-key print, for every image of the matrix and for images with
// labels, tokens, flags, requirements and unknown types.
func TestDump2Matrix(t *testing.T) {
	cryptsetupBin(t)
	ctx := context.Background()
	cfgs := l2Matrix()
	cfgs = append(cfgs, l2Config{name: "label-subsystem-keyring-token", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--label", "data vol", "--subsystem", "cloudluks"},
		extra: func(t *testing.T, img, hdr, dir string) {
			mustCS(t, nil, "token", "add", "--key-description", "user:mykey", "--key-slot", "0", hdr)
			mustCS(t, nil, "token", "add", "--key-description", "user:other", hdr)
		}})
	for _, c := range cfgs {
		t.Run(c.name, func(t *testing.T) {
			im := makeL2(t, c)
			f, err := os.Open(im.hdr)
			require.NoError(t, err)
			defer f.Close()
			h, err := ReadHeader2(f)
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, h.Dump(&out, im.hdr))
			assert.Equal(t, mustCS(t, nil, "luksDump", im.hdr), out.String())

			_, vk, _, err := Unlock2(ctx, f, []byte("pass0"), UnlockOptions{})
			require.NoError(t, err)
			out.Reset()
			require.NoError(t, DumpVolumeKey2(&out, im.hdr, h, vk))
			assert.Equal(t, mustCS(t, []byte("pass0"), "luksDump", "--dump-volume-key", "-q", "--key-file", "-", im.hdr), out.String())
		})
	}
	base := baseImage2(t)
	dir := t.TempDir()
	for _, tc := range corruptCases() {
		if !tc.accept || tc.name == "device-too-small" {
			continue
		}
		t.Run("corrupt-"+tc.name, func(t *testing.T) {
			im := newL2Image(bytes.Clone(base))
			tc.make(t, im)
			p := filepath.Join(dir, tc.name+".img")
			require.NoError(t, os.WriteFile(p, im.b, 0o600))
			h, err := ReadHeader2(bytes.NewReader(im.b))
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, h.Dump(&out, p))
			assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String())
		})
	}
}

// TestUnlock2ArgonLanesAbove255: 300 argon2 lanes open in cryptsetup 2.6.1 (libargon2
// allows 2^24-1) and are computed here too (argon2Lanes): the slot, sealed with other
// parameters, gives a wrong key in both, not a refused keyslot.
func TestUnlock2ArgonLanesAbove255(t *testing.T) {
	im := newL2Image(baseImage2(t))
	im.edit(t, func(m map[string]any) {
		kdf := obj(m, "keyslots", "0", "kdf")
		kdf["cpus"] = jsonNum(300)
		kdf["memory"] = jsonNum(4096)
	})
	im.sealBoth()
	p := filepath.Join(t.TempDir(), "lanes.img")
	require.NoError(t, os.WriteFile(p, im.b, 0o600))
	// cryptsetup derives with 300 lanes and reports a wrong passphrase (exit 2).
	assert.Equal(t, 2, runCS(t, []byte("pass0"), "open", "--test-passphrase", "--key-slot", "0", "--key-file", "-", p).code)
	_, _, _, err := Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass0"), UnlockOptions{Keyslot: Slot(0)})
	assert.ErrorIs(t, err, ErrWrongPassphrase)
}
