package consolekeys_test

import (
	"fmt"
	"os"

	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

func ExampleParse() {
	text, _ := os.ReadFile("testdata/debian12-first-boot.txt") // GetConsoleOutput, through Decode
	r, err := consolekeys.Parse(text)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range r.Fingerprints {
		fmt.Println(f.Type, f.Hash)
	}
	stuck, _ := os.ReadFile("testdata/stuck-crypttab.txt")
	r, _ = consolekeys.Parse(stuck)
	fmt.Println("stuck at:", r.Prompt.Disk)
	// Output:
	// ECDSA SHA256:zKgVlzcwK0DD60hPax3ZzYg3Yo59utv835p66yjMid8
	// ED25519 SHA256:eabEa6drGglgNsQcSgysG/ThETrWRC/yLLVIi+1Aaok
	// RSA SHA256:OGckn6RKxKlt36UNfIO7fZh9DAH5ufRcJV7kDE7xCBA
	// stuck at: data
}
