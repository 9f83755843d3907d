package sector_test

import (
	"bytes"
	"fmt"

	"github.com/cloudluks/cloudluks/luks/sector"
)

func Example() {
	// The cipher spec as given to cryptsetup -c, split into LUKS1 header fields.
	name, mode, err := sector.SplitSpec("aes-xts-plain64")
	if err != nil {
		panic(err)
	}
	key := bytes.Repeat([]byte{0x42}, 64) // 512-bit XTS key = AES-256 K1 ‖ K2
	c, err := sector.New(name, mode, key)
	if err != nil {
		panic(err)
	}
	defer c.Wipe()

	data := make([]byte, 2*sector.SectorSize) // two sectors, starting at sector 8
	c.Encrypt(data, data, 8)
	fmt.Printf("%s: %x…\n", c.Spec(), data[:8])
	c.Decrypt(data, data, 8)
	fmt.Println(bytes.Equal(data, make([]byte, 2*sector.SectorSize)))
	// Output:
	// aes-xts-plain64: 60c0db5e1cc67c75…
	// true
}

func ExampleSplitSpec() {
	for _, spec := range []string{"aes-cbc-essiv:sha256", "aes", "twofish-plain", "null"} {
		name, mode, _ := sector.SplitSpec(spec)
		fmt.Printf("%-22s → %q %q\n", spec, name, mode)
	}
	// Output:
	// aes-cbc-essiv:sha256   → "aes" "cbc-essiv:sha256"
	// aes                    → "aes" "cbc-plain"
	// twofish-plain          → "twofish" "cbc-plain"
	// null                   → "cipher_null" "ecb"
}

func ExampleParseSpec() {
	_, err := sector.ParseSpec("aes", "cbc-tcw")
	fmt.Println(err)
	s, _ := sector.ParseSpec("serpent", "xts-essiv:wp256")
	fmt.Printf("%s iv=%s option=%s\n", s.Chain, s.IV, s.IVOption)
	// Output:
	// unsupported cipher specification: "aes-cbc-tcw": IV generator "tcw" is implemented only by the Linux kernel
	// xts iv=essiv option=wp256
}

func ExampleNewHash() {
	newHash, err := sector.NewHash("WP256")
	if err != nil {
		panic(err)
	}
	h := newHash()
	h.Write([]byte("abc"))
	fmt.Printf("%d %x\n", h.Size(), h.Sum(nil))
	// Output:
	// 32 4e2448a4c6f486bb16b6562c73b4020bf3043e3a731bce721ae1b303d97e6d4c
}
