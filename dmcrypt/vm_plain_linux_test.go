//go:build linux

package dmcrypt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/luks"
)

// plainCase is one line of the plain-mode matrix: cryptsetup's options and the same
// parameters for the library.
type plainCase struct {
	name    string
	cipher  string // "" = cryptsetup's default
	bits    int    // 0 = default
	hash    string // "" = default
	offset  uint64
	skip    uint64
	size    uint64
	sector  uint32
	ivLarge bool
	pass    string // passphrase typed (one line on stdin)
	// keyFile, when set, is the key file's content: -d FILE, read raw from keyOff.
	keyFile []byte
	keyOff  int64
	// stdinKey: -d - (all of stdin, hashed unless --hash plain).
	stdinKey  bool
	discards  bool
	readOnly  bool
	extraArgs []string // cryptsetup/gocryptsetup only (e.g. an ignored --hash)
}

func (c plainCase) params() PlainParams {
	p := PlainParams{Cipher: c.cipher, KeySize: c.bits / 8, Hash: c.hash, Offset: c.offset, Skip: c.skip, Size: c.size, SectorSize: c.sector, IVLargeSectors: c.ivLarge}
	if c.keyFile != nil {
		p.Hash = ""
	}
	return p
}

// args are the options for cryptsetup and gocryptsetup (key source excluded).
func (c plainCase) args() []string {
	a := []string{"open", "--type", "plain", "-q"}
	add := func(k, v string) { a = append(a, k, v) }
	if c.cipher != "" {
		add("-c", c.cipher)
	}
	if c.bits != 0 {
		add("-s", strconv.Itoa(c.bits))
	}
	if c.hash != "" && c.keyFile == nil {
		add("-h", c.hash)
	}
	if c.offset != 0 {
		add("--offset", strconv.FormatUint(c.offset, 10))
	}
	if c.skip != 0 {
		add("--skip", strconv.FormatUint(c.skip, 10))
	}
	if c.size != 0 {
		add("--size", strconv.FormatUint(c.size, 10))
	}
	if c.sector != 0 {
		add("--sector-size", strconv.FormatUint(uint64(c.sector), 10))
	}
	if c.ivLarge {
		a = append(a, "--iv-large-sectors")
	}
	if c.discards {
		a = append(a, "--allow-discards")
	}
	if c.readOnly {
		a = append(a, "--readonly")
	}
	return append(a, c.extraArgs...)
}

var plainMatrix = []plainCase{
	{name: "defaults", pass: "default pass"},
	{name: "cbc-essiv-ripemd160", cipher: "aes-cbc-essiv:sha256", bits: 256, hash: "ripemd160", pass: "pw"},
	{name: "cbc-essiv-ripemd160-128", cipher: "aes-cbc-essiv:sha256", bits: 128, hash: "ripemd160", pass: "pw"},
	{name: "xts-sha256-512", cipher: "aes-xts-plain64", bits: 512, hash: "sha256", pass: "correct horse"},
	{name: "xts-sha512-256", cipher: "aes-xts-plain64", bits: 256, hash: "sha512", pass: "correct horse"},
	{name: "xts-sha512-512", cipher: "aes-xts-plain64", bits: 512, hash: "sha512", pass: "correct horse"},
	{name: "xts-ripemd160-512", cipher: "aes-xts-plain64", bits: 512, hash: "ripemd160", pass: "four rounds"},
	{name: "xts-sha1-offset-skip", cipher: "aes-xts-plain64", bits: 256, hash: "sha1", offset: 8, skip: 3, size: 1024, pass: "s"},
	{name: "plain-short", cipher: "aes-cbc-essiv:sha256", bits: 256, hash: "plain", pass: "short"},
	{name: "plain-long", cipher: "aes-xts-plain64", bits: 256, hash: "plain", pass: strings.Repeat("0123456789", 5)},
	{name: "sha256-16", cipher: "aes-xts-plain64", bits: 512, hash: "sha256:16", pass: "truncated"},
	{name: "plain-16", cipher: "aes-cbc-essiv:sha256", bits: 256, hash: "plain:16", pass: "sixteen bytes!!!xx"},
	{name: "serpent-xts", cipher: "serpent-xts-plain64", bits: 512, hash: "sha256", offset: 2048, skip: 2048, pass: "serpent"},
	{name: "twofish-cbc", cipher: "twofish-cbc-essiv:sha256", bits: 256, hash: "sha512", offset: 16, pass: "twofish"},
	{name: "aes-cbc-plain", cipher: "aes-cbc-plain", bits: 128, hash: "ripemd160", skip: 100, pass: "cbc"},
	{name: "sector-4096", cipher: "aes-xts-plain64", bits: 512, hash: "sha256", offset: 8, sector: 4096, pass: "4k"},
	{name: "sector-4096-iv-large", cipher: "aes-xts-plain64", bits: 512, hash: "sha256", sector: 4096, skip: 16, ivLarge: true, pass: "4k large"},
	{name: "sector-1024", cipher: "aes-cbc-essiv:sha256", bits: 256, hash: "ripemd160", sector: 1024, size: 2048, pass: "1k"},
	{name: "keyfile", cipher: "aes-xts-plain64", bits: 512, keyFile: bytes.Repeat([]byte("key file bytes\n"), 10), keyOff: 5},
	{name: "keyfile-hash-ignored", cipher: "aes-cbc-essiv:sha256", bits: 256, keyFile: []byte("0123456789abcdef0123456789abcdef-rest"), extraArgs: []string{"--hash", "sha512"}},
	{name: "stdin-key-hashed", cipher: "aes-xts-plain64", bits: 256, hash: "sha256", pass: "all of\nstdin\n", stdinKey: true},
	// -d - with --hash plain: cryptsetup reads exactly the key size from stdin (the rest,
	// newline included, is left unread); a shorter stdin is a fault (below).
	{name: "stdin-hash-plain", cipher: "aes-xts-plain64", bits: 256, hash: "plain", pass: "0123456789abcdef0123456789abcdef-and-more\n", stdinKey: true},
	{name: "discards-readonly", cipher: "aes-xts-plain64", bits: 256, hash: "sha256", pass: "flags", discards: true, readOnly: true},
}

// TestVMPlain boots once and checks plain mode against cryptsetup 2.6.1 on an emulated NVMe
// disk: for every case of plainMatrix cryptsetup, OpenPlain/OpenPlainKey and the
// gocryptsetup binary load the same table, keys included (dmsetup table --showkeys), data
// written through one mapping is read through the next, the userspace luks.Volume reads it,
// and status reads the same; then OpenEphemeral, --shared, and the faults.
func TestVMPlain(t *testing.T) {
	opts := vmtest.Options{
		Tools:   []string{"cryptsetup", "dmsetup"},
		Timeout: 8 * time.Minute,
	}
	if !vmtest.InVM() {
		bin := buildCLI(t)
		opts.Files = []string{bin}
		opts.Env = map[string]string{cliEnv: bin}
		opts.Disks = []vmtest.Disk{{Path: vmtest.NewDiskImage(t, 16<<20), NVMeSerial: nvmeSerial}}
	}
	if !vmtest.Run(t, opts) {
		return
	}
	ctx := context.Background()
	bin := os.Getenv(cliEnv)
	require.NotEmpty(t, bin)
	dev := vmtest.GuestDisk(0)
	tmp := t.TempDir()
	const name = "plain"
	table := func(t *testing.T) string {
		t.Helper()
		return mustRun(t, nil, "dmsetup", "table", "--showkeys", name)
	}
	var matched []string

	for _, c := range plainMatrix {
		t.Run(c.name, func(t *testing.T) {
			args := c.args()
			var stdin []byte
			keyPath := ""
			switch {
			case c.keyFile != nil:
				keyPath = filepath.Join(tmp, c.name+".key")
				require.NoError(t, os.WriteFile(keyPath, c.keyFile, 0o600))
				args = append(args, "-d", keyPath, "--keyfile-offset", strconv.FormatInt(c.keyOff, 10))
			case c.stdinKey:
				args = append(args, "-d", "-")
				stdin = []byte(c.pass)
			default:
				stdin = []byte(c.pass + "\n")
			}
			args = append(args, dev, name)

			// 1. cryptsetup maps, writes d1.
			mustRun(t, stdin, "cryptsetup", args...)
			want := table(t)
			// "0 <len> crypt <cipher> <hex key> <skip> <maj:min> <offset> [opts]"
			wf := strings.Fields(want)
			require.GreaterOrEqual(t, len(wf), 8, want)
			require.Equal(t, "crypt", wf[2], want)
			lp := c.params().Luks().WithDefaults()
			require.Len(t, wf[4], 2*lp.KeySize, "hex key in the table")
			require.Equal(t, strconv.FormatUint(c.skip, 10), wf[5])
			require.Equal(t, strconv.FormatUint(c.offset, 10), wf[7])
			wantStatus := mustRun(t, nil, "cryptsetup", "status", name)
			d1 := randBytes(t, 64<<10)
			if !c.readOnly {
				devRW(t, "/dev/mapper/"+name, 4096, d1, 0)
			} else {
				d1 = devRW(t, "/dev/mapper/"+name, 4096, nil, len(d1))
			}
			mustRun(t, nil, "cryptsetup", "close", name)
			assertNothingLeft(t)

			// 2. The library: same table, reads d1, writes d2.
			p := c.params()
			oo := OpenOptions{AllowDiscards: c.discards, ReadOnly: c.readOnly}
			var key *luks.VolumeKey
			var m *Mapping
			var err error
			if c.keyFile != nil {
				raw, err := luks.ReadKeyFile(keyPath, c.keyOff, int64(p.Luks().WithDefaults().KeySize))
				require.NoError(t, err)
				key = luks.NewVolumeKey(raw)
				clear(raw)
				m, err = OpenPlainKey(ctx, dev, name, key.Bytes(), p, oo)
				require.NoError(t, err)
			} else {
				key, err = luks.PlainKey(lp.Hash, []byte(c.pass), lp.KeySize)
				require.NoError(t, err)
				m, err = OpenPlain(ctx, dev, name, []byte(c.pass), p, oo)
				require.NoError(t, err)
			}
			defer key.Wipe()
			assert.Equal(t, "CRYPT-PLAIN-"+name, m.UUID)
			assert.Equal(t, c.readOnly, m.ReadOnly)
			assert.Equal(t, want, table(t), "library table = cryptsetup's")
			assert.Equal(t, wantStatus, ourStatusText(t, name), "status of the library's mapping")
			st, err := Status(name)
			require.NoError(t, err)
			assert.Equal(t, "PLAIN", st.Type)
			assert.False(t, st.Ephemeral())
			assert.Equal(t, d1, devRW(t, m.Path, 4096, nil, len(d1)), "library reads cryptsetup's data")
			d2 := d1
			if !c.readOnly {
				d2 = randBytes(t, 48<<10)
				devRW(t, m.Path, 8192, d2, 0)
			}
			require.NoError(t, Close(ctx, name))
			assertNothingLeft(t)

			// 3. The userspace volume reads what the library's mapping wrote, and writes d3.
			var d3 []byte
			if p.SectorSize <= 512 && !c.readOnly {
				f, err := os.OpenFile(dev, os.O_RDWR, 0)
				require.NoError(t, err)
				v, err := luks.NewPlainVolume(f, p.Luks(), key)
				require.NoError(t, err)
				got := make([]byte, len(d2))
				_, err = v.ReadAt(got, 8192)
				require.NoError(t, err)
				assert.Equal(t, d2, got, "userspace volume reads the mapping's data")
				d3 = randBytes(t, 12<<10)
				_, err = v.WriteAt(d3, 128<<10+100) // not sector-aligned: read-modify-write
				require.NoError(t, err)
				require.NoError(t, f.Sync())
				require.NoError(t, v.Close())
				require.NoError(t, f.Close())
			}

			// 4. gocryptsetup: same table, same status text, reads d2.
			mustRun(t, stdin, bin, args...)
			assert.Equal(t, want, table(t), "gocryptsetup table = cryptsetup's")
			assert.Equal(t, wantStatus, mustRun(t, nil, bin, "status", name))
			if !c.readOnly {
				assert.Equal(t, d2, devRW(t, "/dev/mapper/"+name, 8192, nil, len(d2)), "gocryptsetup's mapping reads the library's data")
				if d3 != nil {
					assert.Equal(t, d3, devRW(t, "/dev/mapper/"+name, 128<<10+100, nil, len(d3)), "the kernel reads what the userspace volume wrote")
				}
			}
			mustRun(t, nil, bin, "close", name)
			assertNothingLeft(t)

			// 5. cryptsetup reads the library's data.
			if !c.readOnly {
				mustRun(t, stdin, "cryptsetup", args...)
				assert.Equal(t, d2, devRW(t, "/dev/mapper/"+name, 8192, nil, len(d2)), "cryptsetup reads the library's data")
				mustRun(t, nil, "cryptsetup", "close", name)
				assertNothingLeft(t)
			}
			if !t.Failed() {
				matched = append(matched, c.name+": "+strings.Join(args[4:len(args)-2], " "))
			}
		})
	}
	t.Logf("plain matrix matching cryptsetup 2.6.1 (%d of %d):\n  %s", len(matched), len(plainMatrix), strings.Join(matched, "\n  "))

	t.Run("image file", func(t *testing.T) {
		img := newImage(t, 4<<20)
		p := PlainParams{Cipher: "aes-xts-plain64", KeySize: 64, Hash: "sha512"}
		m, err := OpenPlain(ctx, img, name, []byte("img"), p, OpenOptions{})
		require.NoError(t, err)
		assert.Equal(t, img, m.BackingFile)
		d := randBytes(t, 32<<10)
		devRW(t, m.Path, 0, d, 0)
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", name), ourStatusText(t, name))
		require.NoError(t, Close(ctx, name))
		assertNothingLeft(t)
		mustRun(t, []byte("img\n"), "cryptsetup", "open", "--type", "plain", "-q", "-c", "aes-xts-plain64", "-s", "512", "-h", "sha512", img, name)
		assert.Equal(t, d, devRW(t, "/dev/mapper/"+name, 0, nil, len(d)))
		mustRun(t, nil, "cryptsetup", "close", name)
		assertNothingLeft(t)
	})

	t.Run("ephemeral", func(t *testing.T) {
		plaintext := bytes.Repeat([]byte("ephemeral swap page "), 4096)[:64<<10]
		var keys, cipher [2]string
		for i := range 2 {
			for _, keyring := range []bool{false, true} {
				m, err := OpenEphemeral(ctx, dev, "swap", PlainParams{Cipher: "aes-xts-plain64", KeySize: 64}, OpenOptions{Keyring: keyring})
				require.NoError(t, err)
				assert.Equal(t, "CRYPT-PLAIN-EPHEMERAL-swap", m.UUID)
				st, err := Status("swap")
				require.NoError(t, err)
				assert.True(t, st.Ephemeral())
				assert.Equal(t, "PLAIN", st.Type)
				assert.Equal(t, keyring, st.KeyInKeyring)
				assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "swap"), ourStatusText(t, "swap"), "cryptsetup sees a plain mapping")
				assert.Empty(t, liveKeys(t), "no key stays in a keyring")
				tb := mustRun(t, nil, "dmsetup", "table", "--showkeys", "swap")
				f := strings.Fields(tb)
				require.GreaterOrEqual(t, len(f), 5, tb)
				if !keyring {
					keys[i] = f[4]
					assert.Len(t, keys[i], 128)
					assert.NotEqual(t, strings.Repeat("0", 128), keys[i])
				} else {
					assert.True(t, strings.HasPrefix(f[4], ":64:logon:"), f[4])
				}
				devRW(t, m.Path, 0, plaintext, 0)
				if !keyring {
					raw := devRW(t, dev, 0, nil, len(plaintext))
					assert.NotContains(t, string(raw), "ephemeral swap page")
					cipher[i] = string(raw[:4096])
				}
				require.NoError(t, Close(ctx, "swap"))
				assertNothingLeft(t)
			}
		}
		assert.NotEqual(t, keys[0], keys[1], "every open draws a new key")
		assert.NotEqual(t, cipher[0], cipher[1], "same plaintext, different ciphertext")
		_, err := OpenEphemeral(ctx, dev, "swap", PlainParams{Hash: "sha256"}, OpenOptions{})
		assert.ErrorIs(t, err, ErrInvalidParameter)
		assertNothingLeft(t)
	})

	t.Run("shared", func(t *testing.T) {
		p := PlainParams{Cipher: "aes-xts-plain64", KeySize: 32, Hash: "sha256", Size: 2048}
		_, err := OpenPlain(ctx, dev, "a", []byte("a"), p, OpenOptions{})
		require.NoError(t, err)
		p2 := p
		p2.Offset = 4096
		_, err = OpenPlain(ctx, dev, "b", []byte("b"), p2, OpenOptions{})
		assert.ErrorIs(t, err, ErrDeviceInUse)
		assert.ErrorIs(t, err, ErrBusy)
		r := run(t, []byte("b\n"), "cryptsetup", "open", "--type", "plain", "-q", "-c", "aes-xts-plain64", "-s", "256", "-h", "sha256", "--size", "2048", "--offset", "4096", dev, "b")
		g := run(t, []byte("b\n"), bin, "open", "--type", "plain", "-q", "-c", "aes-xts-plain64", "-s", "256", "-h", "sha256", "--size", "2048", "--offset", "4096", dev, "b")
		assert.Equal(t, r.code, g.code, "in use: %s / %s", r.stderr, g.stderr)
		assert.Equal(t, r.stderr, g.stderr)
		p2.Shared = true
		_, err = OpenPlain(ctx, dev, "b", []byte("b"), p2, OpenOptions{})
		require.NoError(t, err)
		tb := mustRun(t, nil, "dmsetup", "table", "--showkeys", "b")
		require.NoError(t, Close(ctx, "b"))
		mustRun(t, []byte("b\n"), "cryptsetup", "open", "--type", "plain", "-q", "--shared", "-c", "aes-xts-plain64", "-s", "256", "-h", "sha256", "--size", "2048", "--offset", "4096", dev, "b")
		assert.Equal(t, tb, mustRun(t, nil, "dmsetup", "table", "--showkeys", "b"))
		mustRun(t, nil, "cryptsetup", "close", "b")
		require.NoError(t, Close(ctx, "a"))
		assertNothingLeft(t)
	})

	t.Run("faults", func(t *testing.T) {
		sectors := uint64(16 << 20 / 512)
		empty := newImage(t, 0)
		for _, f := range []struct {
			name string
			dev  string
			p    PlainParams
			err  error
			cli  []string // the same through both CLIs, compared (nil: library only)
		}{
			{"unknown cipher", dev, PlainParams{Cipher: "rot13-cbc-plain"}, luks.ErrUnsupportedCipher, nil},
			{"xts key size", dev, PlainParams{Cipher: "aes-xts-plain64", KeySize: 24}, luks.ErrInvalidKeySize, nil},
			{"unknown hash", dev, PlainParams{Hash: "md4"}, luks.ErrUnsupportedHash, []string{"-h", "nohash"}},
			{"hash length", dev, PlainParams{Hash: "sha256:33"}, luks.ErrInvalidParameter, []string{"-h", "sha256:33"}},
			{"short plain", dev, PlainParams{Hash: "plain:30"}, luks.ErrShortPlainPassphrase, []string{"-h", "plain:30"}},
			{"offset past device", dev, PlainParams{Offset: sectors}, ErrOffsetBeyondDevice, []string{"--offset", strconv.FormatUint(sectors, 10)}},
			{"size past device", dev, PlainParams{Offset: 8, Size: sectors}, ErrDeviceTooSmall, []string{"--offset", "8", "--size", strconv.FormatUint(sectors, 10)}},
			{"empty device", empty, PlainParams{}, ErrDeviceTooSmall, nil},
			{"unaligned sector size", dev, PlainParams{Offset: 1, SectorSize: 4096}, ErrInvalidParameter, []string{"--offset", "1", "--sector-size", "4096"}},
			{"missing device", "/dev/nonexistent", PlainParams{}, ErrNoDevice, nil},
		} {
			t.Run(f.name, func(t *testing.T) {
				_, err := OpenPlain(ctx, f.dev, name, []byte("pw"), f.p, OpenOptions{})
				assert.ErrorIs(t, err, f.err)
				assertNothingLeft(t)
				if f.cli == nil {
					return
				}
				args := append(append([]string{"open", "--type", "plain", "-q"}, f.cli...), f.dev, name)
				r := run(t, []byte("pw\n"), "cryptsetup", args...)
				g := run(t, []byte("pw\n"), bin, args...)
				assert.NotEqual(t, 0, r.code)
				assert.Equal(t, r.code, g.code, "%v: %s / %s", args, r.stderr, g.stderr)
				assert.Equal(t, lastLine(r.stderr), lastLine(g.stderr), "%v", args)
				assertNothingLeft(t)
			})
		}
		t.Run("stdin shorter than the key", func(t *testing.T) {
			args := []string{"open", "--type", "plain", "-q", "-h", "plain", "-d", "-", dev, name}
			r := run(t, []byte("pw\n"), "cryptsetup", args...)
			g := run(t, []byte("pw\n"), bin, args...)
			assert.NotEqual(t, 0, r.code)
			assert.Equal(t, r.code, g.code, "%v: %s / %s", args, r.stderr, g.stderr)
			assert.Equal(t, lastLine(r.stderr), lastLine(g.stderr), "%v", args)
			assertNothingLeft(t)
		})
		_, err := OpenPlain(ctx, dev, "bad/name", []byte("pw"), PlainParams{}, OpenOptions{})
		assert.ErrorIs(t, err, ErrInvalidName)
		_, err = OpenPlainKey(ctx, dev, name, []byte("short"), PlainParams{}, OpenOptions{})
		assert.ErrorIs(t, err, ErrInvalidParameter)
		_, err = OpenPlain(ctx, dev, name, []byte("pw"), PlainParams{}, OpenOptions{})
		require.NoError(t, err)
		_, err = OpenPlain(ctx, dev, name, []byte("pw"), PlainParams{Shared: true}, OpenOptions{})
		assert.ErrorIs(t, err, ErrExists)
		require.NoError(t, Close(ctx, name))
		assertNothingLeft(t)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
