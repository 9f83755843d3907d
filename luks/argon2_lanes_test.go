package luks

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// TestArgon2LanesMatchesXCrypto runs the RFC 9106 implementation used above 255 lanes on
// random parameters x/crypto/argon2 can also take (1…255 lanes, memory from the 8·lanes
// minimum up, passes 1…3, both types, odd key lengths across H”s 64-byte boundary) and
// compares the outputs.
func TestArgon2LanesMatchesXCrypto(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 2026))
	cases := [][3]uint32{{1, 8, 1}, {4, 32, 2}, {1, 1024, 3}, {255, 8 * 255, 1}, {3, 100, 1}}
	for i := 0; i < 16; i++ {
		p := 1 + rng.Uint32N(255)
		cases = append(cases, [3]uint32{p, 8*p + rng.Uint32N(600), 1 + rng.Uint32N(3)})
	}
	for i, c := range cases {
		lanes, mem, passes := c[0], c[1], c[2]
		pass := make([]byte, rng.IntN(40))
		salt := make([]byte, 8+rng.IntN(40))
		fillRand(rng, pass)
		fillRand(rng, salt)
		keyLen := uint32([]int{4, 32, 63, 64, 65, 100, 128}[i%7])
		for _, typ := range []string{"argon2i", "argon2id"} {
			want := argon2.IDKey(pass, salt, passes, mem, uint8(lanes), keyLen)
			if typ == "argon2i" {
				want = argon2.Key(pass, salt, passes, mem, uint8(lanes), keyLen)
			}
			got, err := argon2Lanes(ctx, typ, pass, salt, passes, mem, lanes, keyLen)
			require.NoError(t, err)
			require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got), "%s t=%d m=%d p=%d len=%d", typ, passes, mem, lanes, keyLen)
		}
	}
}

func fillRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// TestArgon2LanesMatchesLibargon2 compares argon2Key above 255 lanes with libargon2's
// reference command (Debian's argon2 package, the library cryptsetup 2.6.1 links) on
// random parameters. The CLI takes the salt as an argument, so salts are printable.
func TestArgon2LanesMatchesLibargon2(t *testing.T) {
	bin := testenv.LookPath(t, "argon2", "apt-get install argon2")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(255, 9106))
	cases := [][3]uint32{{256, 8 * 256, 1}, {300, 8*300 + 17, 2}, {1024, 8192, 1}}
	for i := 0; i < 4; i++ {
		p := 256 + rng.Uint32N(1500)
		cases = append(cases, [3]uint32{p, 8*p + rng.Uint32N(4096), 1 + rng.Uint32N(2)})
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i, c := range cases {
		lanes, mem, passes := c[0], c[1], c[2]
		salt := make([]byte, 8+rng.IntN(24))
		for j := range salt {
			salt[j] = letters[rng.IntN(len(letters))]
		}
		pass := []byte(fmt.Sprintf("passphrase %d", i))
		keyLen := []int{32, 64, 80}[i%3]
		for _, typ := range []string{"argon2i", "argon2id"} {
			flag := map[string]string{"argon2i": "-i", "argon2id": "-id"}[typ]
			cmd := exec.Command(bin, string(salt), flag, "-t", fmt.Sprint(passes), "-k", fmt.Sprint(mem),
				"-p", fmt.Sprint(lanes), "-l", fmt.Sprint(keyLen), "-r")
			cmd.Stdin = bytes.NewReader(pass)
			out, err := cmd.Output()
			require.NoError(t, err, "argon2 %v", cmd.Args)
			got, err := argon2Key(ctx, typ, pass, salt, int64(passes), int64(mem), int64(lanes), keyLen, 0, 0)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(out)), hex.EncodeToString(got), "%s t=%d m=%d p=%d", typ, passes, mem, lanes)
		}
	}
}

// TestArgon2LanesLimits: above 255 lanes the limits hold before any allocation, as
// below: libargon2's lane and memory minimums, the memory and work limits, and a
// cancelled context.
func TestArgon2LanesLimits(t *testing.T) {
	ctx := context.Background()
	pass, salt := []byte("p"), []byte("saltsalt")
	_, err := argon2Key(ctx, "argon2id", pass, salt, 1, 8*300-1, 300, 32, 0, 0)
	assert.ErrorIs(t, err, ErrCorruptKeyslot)
	_, err = argon2Key(ctx, "argon2id", pass, salt, 1, 8<<24, 1<<24, 32, 0, 0)
	assert.ErrorIs(t, err, ErrCorruptKeyslot)
	_, err = argon2Key(ctx, "argon2id", pass, salt, 1, 8*300, 300, 32, 2000, 0)
	assert.ErrorIs(t, err, ErrWorkLimit)
	_, err = argon2Key(ctx, "argon2id", pass, salt, 10, 8*300, 300, 32, 0, 8*300*10-1)
	assert.ErrorIs(t, err, ErrWorkLimit)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = argon2Key(cctx, "argon2id", pass, salt, 1, 8*300, 300, 32, 0, 0)
	assert.ErrorIs(t, err, context.Canceled)
	// Cancelled while it runs: it stops at the next slice (one slice of 64 MiB is a few ms).
	cctx, cancel = context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = argon2Key(cctx, "argon2id", pass, salt, 16, 64<<10, 512, 32, 0, 0)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 3*time.Second)
	// The maximum lane count itself is accepted (and refused here only for memory).
	_, err = argon2Key(ctx, "argon2i", pass, salt, 1, 8*(1<<24-1), 1<<24-1, 32, 0, 0)
	assert.ErrorIs(t, err, ErrWorkLimit)
}

// TestArgon2LanesTwoWayWithCryptsetup: cryptsetup 2.6.1 caps --pbkdf-parallel at 4 when it
// writes a keyslot, but on unlock it hands the header's cpus to libargon2, which takes up
// to 2^24-1 lanes. A keyslot sealed here with 300 lanes (argon2Lanes) opens in cryptsetup
// and here; with cpus 2^24 both refuse it.
func TestArgon2LanesTwoWayWithCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	ctx := context.Background()
	dir := t.TempDir()
	img := newImage(t, dir, "l.img", 20<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img)
	f := openRW(t, img)
	_, vk, _, err := Unlock2(ctx, f, []byte("pass0"), UnlockOptions{})
	require.NoError(t, err)
	defer vk.Wipe()

	addSlot := func(lanes uint32) {
		t.Helper()
		h, m, err := loadLUKS2ForWrite(f, crand.Reader)
		require.NoError(t, err)
		off, n, err := findAreaGap(m, vk.Len())
		require.NoError(t, err)
		_, digest, err := segmentDigestID(m)
		require.NoError(t, err)
		kdf := luks2KDF{typ: "argon2id", iter: 1, memory: 8 * lanes, parallel: lanes, forced: true}
		obj, mat, err := sealLUKS2Keyslot(ctx, kdf, "sha256", h.Segments[0].Encryption, vk.Len(), off, n, vk.b, []byte("lanes"), crand.Reader)
		require.NoError(t, err)
		digest.Set("keyslots", jsonc.NewArray(append(digest.Get("keyslots").Items, jsonc.NewString("1"))...))
		m.json.Get("keyslots").Set("1", obj)
		require.NoError(t, writeFull(f, mat, int64(off)))
		require.NoError(t, writeLUKS2(f, m))
	}
	addSlot(300)
	assert.Contains(t, mustCS(t, nil, "luksDump", img), "\tThreads:    300\n")
	mustCS(t, []byte("lanes"), "open", "--test-passphrase", "--key-slot", "1", "--key-file", "-", img)
	assert.Equal(t, vk.Bytes(), csVolumeKey(t, img, []byte("lanes")))
	_, got, slot, err := Unlock2(ctx, f, []byte("lanes"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, slot)
	assert.Equal(t, vk.Bytes(), got.Bytes())
	got.Wipe()

	// One lane past libargon2's ARGON2_MAX_LANES: cryptsetup cannot open the slot, nor can we.
	_, m, err := loadLUKS2ForWrite(f, crand.Reader)
	require.NoError(t, err)
	m.json.Get("keyslots").Get("1").Get("kdf").Set("cpus", jsonc.NewInt(1<<24)).Set("memory", jsonc.NewInt(8<<24))
	require.NoError(t, writeLUKS2(f, m))
	assert.Contains(t, mustCS(t, nil, "luksDump", img), "\tThreads:    16777216\n")
	r := runCS(t, []byte("lanes"), "open", "--test-passphrase", "--key-slot", "1", "--key-file", "-", img)
	assert.NotEqual(t, 0, r.code, "cryptsetup opened a keyslot with 2^24 lanes")
	_, _, _, err = Unlock2(ctx, f, []byte("lanes"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrCorruptKeyslot)
	t.Logf("cryptsetup with cpus 2^24: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
}

// BenchmarkArgon2Lanes compares argon2Lanes with x/crypto/argon2 at 255 lanes, 64 MiB, one
// pass (the largest case both take).
func BenchmarkArgon2Lanes(b *testing.B) {
	pass, salt := []byte("passphrase"), []byte("0123456789abcdef0123456789abcdef")
	b.Run("rfc9106-here", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := argon2Lanes(context.Background(), "argon2id", pass, salt, 1, 64<<10, 255, 64); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("x-crypto", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			argon2.IDKey(pass, salt, 1, 64<<10, 255, 64)
		}
	})
}
