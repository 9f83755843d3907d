package luks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"reflect"
	"testing"
)

// synthImage2 builds a LUKS2 image of 16 KiB metadata copies around text (NUL-padded,
// truncated to the area), both copies sealed with sha256, followed by the keyslots area of
// the seed header; seq gives the copies' sequence IDs.
func synthImage2(text []byte, seq0, seq1 uint64) []byte {
	const meta = 0x4000
	b := make([]byte, 2*meta+0x40000)
	for c, seq := range []uint64{seq0, seq1} {
		o := c * meta
		bin := b[o : o+BinaryHeaderSize]
		if c == 0 {
			copy(bin, magic)
		} else {
			copy(bin, magic2)
		}
		binary.BigEndian.PutUint16(bin[6:], 2)
		binary.BigEndian.PutUint64(bin[8:], meta)
		binary.BigEndian.PutUint64(bin[16:], seq)
		copy(bin[l2offChecksumAlg:], "sha256")
		copy(bin[l2offUUID:], "0b6c5d53-0d0b-4a63-9a39-7e1f2e4c5d6a")
		binary.BigEndian.PutUint64(bin[l2offHdrOffset:], uint64(o))
		copy(b[o+BinaryHeaderSize:o+meta], text)
		h := sha256.New()
		h.Write(b[o : o+meta])
		copy(bin[l2offCsum:], h.Sum(nil))
	}
	return b
}

func seedJSON(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/luks2/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReadHeader2JSON feeds arbitrary JSON areas through the whole loader. An accepted
// header must survive a round trip (its JSON, stored again, loads to the same typed
// header), dump, and go through Unlock2 (with small work limits) without a panic.
func FuzzReadHeader2JSON(f *testing.F) {
	seed := seedJSON(f)
	f.Add(seed)
	f.Add(bytes.Replace(seed, []byte(`"size":"dynamic"`), []byte(`"size":"512"`), 1))
	f.Add(bytes.Replace(seed, []byte(`"tokens":{}`), []byte(`"tokens":{"0":{"type":"a\/b","keyslots":["0"]}}`), 1))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, text []byte) {
		if len(text) > 0x4000-BinaryHeaderSize {
			return
		}
		h, err := ReadHeader2(bytes.NewReader(synthImage2(text, 1, 1)))
		if err != nil {
			return
		}
		h2, err := ReadHeader2(bytes.NewReader(synthImage2(h.JSON, 1, 1)))
		if err != nil {
			t.Fatalf("accepted JSON refused after a round trip: %v", err)
		}
		if !reflect.DeepEqual(h.Keyslots, h2.Keyslots) || !reflect.DeepEqual(h.Segments, h2.Segments) || !reflect.DeepEqual(h.Config, h2.Config) {
			t.Fatal("round trip changed the header")
		}
		// Dumping any accepted header, and trying to unlock it, must not panic.
		_ = h.Dump(io.Discard, "x")
		_, _ = h.DataSegment()
		_, _, _, _ = Unlock2(context.Background(), bytes.NewReader(synthImage2(text, 1, 1)), []byte("p"), UnlockOptions{MaxIterations: 2000, MaxArgon2Memory: 1 << 12})
	})
}

// FuzzReadHeader2Binary mutates the first 64 KiB of an image (binary headers, JSON and the
// start of the keyslots area): the loader must never panic, hang or allocate more than the
// 4 MiB a metadata copy may have.
func FuzzReadHeader2Binary(f *testing.F) {
	img := synthImage2(seedJSON(f), 1, 1)
	f.Add(img[:0x10000])
	f.Add(synthImage2(seedJSON(f), 1, 9)[:0x10000])
	f.Fuzz(func(t *testing.T, head []byte) {
		b := bytes.Clone(img)
		copy(b, head)
		if h, err := ReadHeader2(bytes.NewReader(b)); err == nil && h.HeaderSize > MaxMetadataSize {
			t.Fatalf("accepted header size %d", h.HeaderSize)
		}
	})
}

func TestSynthImage2Loads(t *testing.T) {
	h, err := ReadHeader2(bytes.NewReader(synthImage2(seedJSON(t), 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if h.PrimaryErr != nil || h.SecondaryErr != nil || h.Keyslots[0].KDF.Type != "argon2id" || !h.Segments[0].Dynamic {
		t.Fatalf("unexpected header %+v", h)
	}
	h, err = ReadHeader2(bytes.NewReader(synthImage2(seedJSON(t), 1, 2)))
	if err != nil || h.SeqID != 2 || h.Secondary == nil || h.PrimaryErr == nil {
		t.Fatalf("newer secondary not preferred: %v %+v", err, h)
	}
}
