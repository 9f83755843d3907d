package luks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compatCase is one row of the cryptsetup compatibility matrix.
type compatCase struct {
	cipher string
	bits   int
	hash   string
	// kernelOnly: cryptsetup 2.6.1 (OpenSSL backend) has no userspace implementation of
	// this spec and opens its key slots through a temporary dm-crypt mapping, which the host
	// kernel lacks. cryptsetup can still parse and dump such images, so dumps are compared;
	// key slots are cross-checked against the kernel in the dmcrypt VM tests.
	kernelOnly bool
}

func (c compatCase) name() string { return fmt.Sprintf("%s-%d-%s", c.cipher, c.bits, c.hash) }

var compatMatrix = []compatCase{
	{cipher: "aes-xts-plain64", bits: 512, hash: "sha256"},
	{cipher: "aes-xts-plain64", bits: 256, hash: "sha256"},
	{cipher: "aes-xts-plain64", bits: 512, hash: "sha512"},
	{cipher: "aes-cbc-essiv:sha256", bits: 256, hash: "sha1"},
	{cipher: "aes-cbc-essiv:sha256", bits: 128, hash: "sha1"},
	{cipher: "aes-cbc-essiv:sha256", bits: 192, hash: "sha256"},
	{cipher: "aes-cbc-plain64", bits: 256, hash: "ripemd160"},
	{cipher: "aes-cbc-plain", bits: 256, hash: "whirlpool"},
	{cipher: "aes", bits: 128, hash: "sha224"},
	{cipher: "aes-ecb", bits: 256, hash: "sha384"},
	{cipher: "aes-xts-essiv:sha256", bits: 512, hash: "sha256"},
	{cipher: "aes-xts-plain", bits: 256, hash: "sha1"},
	{cipher: "aes-xts-benbi", bits: 512, hash: "sha256"},
	{cipher: "aes-cbc-benbi", bits: 256, hash: "sha256"},
	{cipher: "aes-cbc-null", bits: 128, hash: "sha256"},
	{cipher: "aes-cbc-plain64be", bits: 256, hash: "sha512"},
	{cipher: "aes-cbc-eboiv", bits: 256, hash: "sha256"},
	{cipher: "aes-lrw-benbi", bits: 384, hash: "sha256", kernelOnly: true},
	{cipher: "aes-lrw-plain64", bits: 256, hash: "sha1", kernelOnly: true},
	{cipher: "twofish-xts-plain64", bits: 512, hash: "sha256", kernelOnly: true},
	{cipher: "twofish-cbc-plain64", bits: 256, hash: "sha256", kernelOnly: true},
	{cipher: "serpent-xts-plain64", bits: 512, hash: "whirlpool", kernelOnly: true},
	{cipher: "serpent-cbc-essiv:sha256", bits: 256, hash: "sha256", kernelOnly: true},
	{cipher: "aes-xts-essiv:wp256", bits: 512, hash: "sha256", kernelOnly: true},
}

func ourDump(t *testing.T, f *os.File, path string) string {
	t.Helper()
	h, err := ReadHeader(f)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, h.Dump(&b, path))
	return b.String()
}

func ourVKDump(t *testing.T, h *Header, vk *VolumeKey, path string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, DumpVolumeKey(&b, path, h, vk))
	return b.String()
}

// testPass asserts cryptsetup open --test-passphrase result for a key file and slot.
func testPass(t *testing.T, img, kf string, slot int, wantOK bool, extra ...string) {
	t.Helper()
	args := append([]string{"open", "--test-passphrase", "-d", kf}, extra...)
	if slot >= 0 {
		args = append(args, "--key-slot", strconv.Itoa(slot))
	}
	r := runCS(t, nil, append(args, img)...)
	if wantOK {
		require.Equalf(t, 0, r.code, "cryptsetup should open slot %d: %s", slot, r.stderr)
	} else {
		require.Equalf(t, 2, r.code, "cryptsetup should refuse the passphrase (exit 2): %s", r.stderr)
	}
}

// TestCompatCryptsetupImagesUsedByUs: images made by real cryptsetup are unlocked, dumped
// and key-managed by this package, and cryptsetup then accepts the result.
func TestCompatCryptsetupImagesUsedByUs(t *testing.T) {
	ctx := context.Background()
	for _, c := range compatMatrix {
		if c.kernelOnly {
			continue // cryptsetup cannot create these without device-mapper on this host
		}
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel() // cryptsetup runs and fsyncs dominate; overlap them
			dir := t.TempDir()
			img := newImage(t, dir, "cs.img", 8<<20)
			kf0 := writeKeyFile(t, dir, "k0", []byte("pass0\nwith newline\n"))
			kf3 := writeKeyFile(t, dir, "k3", []byte("pass3"))
			mustCS(t, nil, "luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000",
				"-c", c.cipher, "-s", strconv.Itoa(c.bits), "-h", c.hash, img, kf0)
			mustCS(t, nil, "luksAddKey", "-q", "--pbkdf-force-iterations", "1000", "-S", "3", "-d", kf0, img, kf3)
			csVK := mustCS(t, nil, "luksDump", "-q", "--dump-volume-key", "-d", kf3, img)
			csDump := mustCS(t, nil, "luksDump", img)

			f := openRW(t, img)
			require.Equal(t, csDump, ourDump(t, f, img), "luksDump text")

			// Any slot finds slot 3; the key file is used whole (newlines included).
			h, vk, slot, err := Unlock(ctx, f, []byte("pass3"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, 3, slot)
			assert.Equal(t, csVK, ourVKDump(t, h, vk, img), "--dump-volume-key text")
			pass0, err := ReadKeyFile(kf0, 0, 0)
			require.NoError(t, err)
			_, vk0, slot, err := Unlock(ctx, f, pass0, UnlockOptions{Keyslot: Slot(0)})
			require.NoError(t, err)
			assert.Equal(t, 0, slot)
			assert.Equal(t, vk.Bytes(), vk0.Bytes())
			_, _, _, err = Unlock(ctx, f, []byte("pass0"), UnlockOptions{})
			require.ErrorIs(t, err, ErrWrongPassphrase)

			// Key management by us: add in slot 5, change slot 0 (moves to the first free
			// slot, 1), kill slot 3.
			_, s, err := AddKey(ctx, f, []byte("pass3"), []byte("us5"), AddKeyOptions{Keyslot: Slot(5), ForceIterations: 1000})
			require.NoError(t, err)
			require.Equal(t, 5, s)
			oldS, newS, err := ChangeKey(ctx, f, pass0, []byte("changed"), AddKeyOptions{ForceIterations: 1000})
			require.NoError(t, err)
			assert.Equal(t, 0, oldS)
			assert.Equal(t, 1, newS)
			require.NoError(t, KillSlot(f, 3))

			// cryptsetup agrees.
			testPass(t, img, writeKeyFile(t, dir, "k5", []byte("us5")), 5, true)
			kfc := writeKeyFile(t, dir, "kc", []byte("changed"))
			testPass(t, img, kfc, 1, true)
			testPass(t, img, kfc, -1, true)
			testPass(t, img, kf0, -1, false)
			testPass(t, img, kf3, -1, false)
			assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
			assert.Equal(t, csVK, mustCS(t, nil, "luksDump", "-q", "--dump-volume-key", "-d", kfc, img),
				"the volume key survives our key management")
			s, err = RemoveKey(ctx, f, []byte("us5"), false)
			require.NoError(t, err)
			assert.Equal(t, 5, s)
			testPass(t, img, writeKeyFile(t, dir, "k5b", []byte("us5")), -1, false)
			testPass(t, img, kfc, -1, true)
		})
	}
}

// TestCompatOurImagesUsedByCryptsetup: images this package formats are dumped identically by
// cryptsetup, open with cryptsetup on the slots we wrote, and survive cryptsetup's own key
// management (luksAddKey, luksKillSlot) so that we open them again.
func TestCompatOurImagesUsedByCryptsetup(t *testing.T) {
	ctx := context.Background()
	for i, c := range compatMatrix {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			img := newImage(t, dir, "us.img", 8<<20)
			f := openRW(t, img)
			first := i % NumKeyslots // vary the first slot, including non-zero slots
			h, vk, err := Format(ctx, f, []byte("first"), FormatOptions{
				Cipher: c.cipher, KeySize: c.bits, Hash: c.hash, ForceIterations: 1000, Keyslot: Slot(first),
			})
			require.NoError(t, err)
			assert.Equal(t, c.bits/8, vk.Len())
			_, second, err := AddKey(ctx, f, []byte("first"), []byte("second"), AddKeyOptions{ForceIterations: 1234})
			require.NoError(t, err)
			assert.NotEqual(t, first, second)

			// cryptsetup parses and dumps the header exactly as we do.
			assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
			assert.Equal(t, 0, runCS(t, nil, "isLuks", img).code)

			// Our own unlock of both slots.
			_, vk2, s, err := Unlock(ctx, f, []byte("second"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, second, s)
			assert.Equal(t, vk.Bytes(), vk2.Bytes())

			if c.kernelOnly {
				r := runCS(t, nil, "open", "--test-passphrase", "-d", writeKeyFile(t, dir, "k1", []byte("first")), img)
				t.Logf("cryptsetup cannot verify %s key slots on this host (exit %d: %s); covered by the dm-crypt VM tests", c.cipher, r.code, r.stderr)
				return
			}
			kf1 := writeKeyFile(t, dir, "k1", []byte("first"))
			kf2 := writeKeyFile(t, dir, "k2", []byte("second"))
			testPass(t, img, kf1, first, true)
			testPass(t, img, kf2, second, true)
			testPass(t, img, kf1, second, false)
			assert.Equal(t, ourVKDump(t, h, vk, img), mustCS(t, nil, "luksDump", "-q", "--dump-volume-key", "-d", kf2, img))

			// cryptsetup manages keys on our image; we follow.
			kf4 := writeKeyFile(t, dir, "k4", []byte("by-cryptsetup"))
			free := -1
			for j := NumKeyslots - 1; j >= 0; j-- {
				if j != first && j != second {
					free = j
					break
				}
			}
			mustCS(t, nil, "luksAddKey", "-q", "--pbkdf-force-iterations", "1000", "-S", strconv.Itoa(free), "-d", kf1, img, kf4)
			mustCS(t, nil, "luksKillSlot", "-q", img, strconv.Itoa(second))
			_, vk3, s, err := Unlock(ctx, f, []byte("by-cryptsetup"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, free, s)
			assert.Equal(t, vk.Bytes(), vk3.Bytes())
			_, _, _, err = Unlock(ctx, f, []byte("second"), UnlockOptions{Keyslot: Slot(second)})
			require.ErrorIs(t, err, ErrKeyslotInactive)
			assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
		})
	}
}

// TestCompatLayout: for the same key size and --align-payload, cryptsetup and Format put the
// key material and the payload at the same sectors (compared through both tools' dumps
// after replacing the random fields).
func TestCompatLayout(t *testing.T) {
	ctx := context.Background()
	for _, bits := range []int{128, 256, 512} {
		for _, align := range []uint32{0, 1, 8, 128, 2048, 3000, 8192} {
			t.Run(fmt.Sprintf("%d-align%d", bits, align), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				cs := newImage(t, dir, "cs.img", 8<<20)
				kf := writeKeyFile(t, dir, "k", []byte("p"))
				cipher := "aes-xts-plain64"
				if bits == 128 {
					cipher = "aes-cbc-essiv:sha256"
				}
				args := []string{"luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000", "-c", cipher, "-s", strconv.Itoa(bits)}
				if align != 0 {
					args = append(args, "--align-payload", strconv.Itoa(int(align)))
				}
				mustCS(t, nil, append(args, cs, kf)...)
				csh, err := ReadHeader(openRW(t, cs))
				require.NoError(t, err)

				us := newImage(t, dir, "us.img", 8<<20)
				h, _, err := Format(ctx, openRW(t, us), []byte("p"), FormatOptions{Cipher: cipher, KeySize: bits, ForceIterations: 1000, AlignPayload: align})
				require.NoError(t, err)
				assert.Equal(t, csh.PayloadOffset, h.PayloadOffset, "payload offset")
				for i := range h.Keyslots {
					assert.Equal(t, csh.Keyslots[i].KeyMaterialOffset, h.Keyslots[i].KeyMaterialOffset, "keyslot %d offset", i)
				}
				lay, err := ComputeLayout(bits/8, align, false)
				require.NoError(t, err)
				assert.Equal(t, h.PayloadOffset, lay.PayloadOffset)
			})
		}
	}
}

// TestCompatDetachedHeader: detached headers both ways, payload offset = --align-payload.
func TestCompatDetachedHeader(t *testing.T) {
	ctx := context.Background()
	for _, align := range []uint32{0, 8192} {
		t.Run(fmt.Sprintf("align%d", align), func(t *testing.T) {
			dir := t.TempDir()
			kf := writeKeyFile(t, dir, "k", []byte("detached"))
			// cryptsetup → us
			hdrCS := filepath.Join(dir, "hdr-cs.bin")
			dataCS := newImage(t, dir, "data-cs.img", 8<<20)
			args := []string{"luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000", "--header", hdrCS}
			if align != 0 {
				args = append(args, "--align-payload", strconv.Itoa(int(align)))
			}
			mustCS(t, nil, append(args, dataCS, kf)...)
			hf := openRW(t, hdrCS)
			h, vk, _, err := Unlock(ctx, hf, []byte("detached"), UnlockOptions{})
			require.NoError(t, err)
			assert.Equal(t, align, h.PayloadOffset)
			assert.Equal(t, mustCS(t, nil, "luksDump", hdrCS), ourDump(t, hf, hdrCS))
			assert.Equal(t, mustCS(t, nil, "luksDump", "-q", "--dump-volume-key", "-d", kf, "--header", hdrCS, dataCS),
				ourVKDump(t, h, vk, hdrCS), "with --header, cryptsetup 2.6.1 names the header file")
			assert.NotEqual(t, 0, runCS(t, nil, "isLuks", dataCS).code, "the data device carries no header")
			df := openRW(t, dataCS)
			v, err := NewVolume(df, h, vk)
			require.NoError(t, err)
			assert.Equal(t, int64(8<<20)-int64(align)*512, v.Size())
			require.NoError(t, v.Close())

			// us → cryptsetup
			hdrUs := filepath.Join(dir, "hdr-us.bin")
			huf, err := os.OpenFile(hdrUs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			require.NoError(t, err)
			defer huf.Close()
			hu, _, err := Format(ctx, huf, []byte("detached"), FormatOptions{Detached: true, AlignPayload: align, ForceIterations: 1000})
			require.NoError(t, err)
			assert.Equal(t, align, hu.PayloadOffset)
			dataUs := newImage(t, dir, "data-us.img", 8<<20)
			testPass(t, dataUs, kf, 0, true, "--header", hdrUs)
			assert.Equal(t, mustCS(t, nil, "luksDump", hdrUs), ourDump(t, huf, hdrUs))
			stCS, err := os.Stat(hdrCS)
			require.NoError(t, err)
			stUs, err := os.Stat(hdrUs)
			require.NoError(t, err)
			assert.Equal(t, stCS.Size(), stUs.Size(), "detached header file size")
		})
	}
	t.Run("align1-refused", func(t *testing.T) {
		_, err := ComputeLayout(64, 1, true)
		require.ErrorIs(t, err, ErrInvalidParameter)
		dir := t.TempDir()
		r := runCS(t, nil, "luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000",
			"--header", filepath.Join(dir, "h"), "--align-payload", "1", newImage(t, dir, "d", 1<<20), writeKeyFile(t, dir, "k", []byte("x")))
		assert.NotEqual(t, 0, r.code, "cryptsetup refuses it too")
	})
}

// TestCompatKeyFileOffsetSize: --keyfile-offset / --keyfile-size select the same bytes in
// cryptsetup and ReadKeyFile.
func TestCompatKeyFileOffsetSize(t *testing.T) {
	dir := t.TempDir()
	img := newImage(t, dir, "kf.img", 8<<20)
	content := []byte("0123456789-the-real-key-\n-trailing-bytes")
	kf := writeKeyFile(t, dir, "k", content)
	mustCS(t, nil, "luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000",
		"--keyfile-offset", "11", "--keyfile-size", "13", img, kf)
	key, err := ReadKeyFile(kf, 11, 13)
	require.NoError(t, err)
	assert.Equal(t, []byte("the-real-key-"), key)
	_, _, _, err = Unlock(context.Background(), openRW(t, img), key, UnlockOptions{})
	require.NoError(t, err)
	whole, err := ReadKeyFile(kf, 0, 0)
	require.NoError(t, err)
	_, _, _, err = Unlock(context.Background(), openRW(t, img), whole, UnlockOptions{})
	require.True(t, errors.Is(err, ErrWrongPassphrase))
}
