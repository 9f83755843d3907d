package dm

import "fmt"

func ExampleCryptTable_String() {
	key := make([]byte, 64) // the volume key; never printed
	t := &CryptTable{Length: 16384, Cipher: "aes-xts-plain64", Key: key, Device: "/dev/loop0", Offset: 4096, AllowDiscards: true}
	fmt.Println(t)
	// Output:
	// 0 16384 crypt aes-xts-plain64 <redacted> 0 /dev/loop0 4096 1 allow_discards
}

func ExampleLUKS1UUID() {
	fmt.Println(LUKS1UUID("0e6c6e56-4e8e-4554-95d7-8dc6342abbd7", "data"))
	// Output:
	// CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-data
}
