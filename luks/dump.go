package luks

import (
	"bufio"
	"fmt"
	"io"
)

// Dump writes the text `cryptsetup luksDump PATH` 2.6 prints for this header, byte for byte
// (lib/setup.c _luks_dump): path is printed as given. Slots whose state is anything but
// enabled print as DISABLED, as in cryptsetup.
func (h *Header) Dump(w io.Writer, path string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "LUKS header information for %s\n\n", path)
	fmt.Fprintf(bw, "Version:       \t%d\n", h.Version)
	fmt.Fprintf(bw, "Cipher name:   \t%s\n", h.CipherName)
	fmt.Fprintf(bw, "Cipher mode:   \t%s\n", h.CipherMode)
	fmt.Fprintf(bw, "Hash spec:     \t%s\n", h.HashSpec)
	fmt.Fprintf(bw, "Payload offset:\t%d\n", h.PayloadOffset)
	fmt.Fprintf(bw, "MK bits:       \t%d\n", uint64(h.KeyBytes)*8)
	fmt.Fprintf(bw, "MK digest:     \t")
	hexBytes(bw, h.MKDigest[:])
	fmt.Fprintf(bw, "\nMK salt:       \t")
	hexBytes(bw, h.MKDigestSalt[:16])
	fmt.Fprintf(bw, "\n               \t")
	hexBytes(bw, h.MKDigestSalt[16:])
	fmt.Fprintf(bw, "\nMK iterations: \t%d\n", h.MKDigestIterations)
	fmt.Fprintf(bw, "UUID:          \t%s\n\n", h.UUID)
	for i, k := range h.Keyslots {
		if !k.Enabled() {
			fmt.Fprintf(bw, "Key Slot %d: DISABLED\n", i)
			continue
		}
		fmt.Fprintf(bw, "Key Slot %d: ENABLED\n", i)
		fmt.Fprintf(bw, "\tIterations:         \t%d\n", k.Iterations)
		fmt.Fprintf(bw, "\tSalt:               \t")
		hexBytes(bw, k.Salt[:16])
		fmt.Fprintf(bw, "\n\t                      \t")
		hexBytes(bw, k.Salt[16:])
		fmt.Fprintf(bw, "\n\tKey material offset:\t%d\n", k.KeyMaterialOffset)
		fmt.Fprintf(bw, "\tAF stripes:            \t%d\n", k.Stripes)
	}
	return bw.Flush()
}

// hexBytes prints each byte as two lower-case hex digits followed by a space, as
// cryptsetup's crypt_log_hex does (so every hex line ends in a space).
func hexBytes(w io.Writer, b []byte) {
	for _, c := range b {
		fmt.Fprintf(w, "%02x ", c)
	}
}

// DumpVolumeKey writes the text of `cryptsetup luksDump --dump-volume-key` 2.6
// (src/cryptsetup.c luksDump_with_volume_key): dataPath is printed as given (cryptsetup
// 2.6.1 prints the device argument, or the --header file when the header is detached), and
// the key is printed 16 bytes per line. The key goes only to w: the text is built in one
// buffer of this function's own (no fmt or bufio buffer sees the key bytes), written with
// a single Write and wiped.
func DumpVolumeKey(w io.Writer, dataPath string, h *Header, vk *VolumeKey) error {
	return dumpVolumeKey(w, dataPath, h.CipherName, h.CipherMode, int64(int32(h.PayloadOffset)), h.UUID, vk)
}

func dumpVolumeKey(w io.Writer, dataPath, cipherName, cipherMode string, payloadOffset int64, uuid string, vk *VolumeKey) error {
	head := fmt.Sprintf("LUKS header information for %s\n", dataPath) +
		fmt.Sprintf("Cipher name:   \t%s\n", cipherName) +
		fmt.Sprintf("Cipher mode:   \t%s\n", cipherMode) +
		fmt.Sprintf("Payload offset:\t%d\n", payloadOffset) +
		fmt.Sprintf("UUID:          \t%s\n", uuid) +
		fmt.Sprintf("MK bits:       \t%d\n", vk.Len()*8) +
		"MK dump:\t"
	key := vk.Bytes()
	buf := make([]byte, 0, len(head)+len(key)*3+len(key)/16*3+1)
	defer func() { clear(buf[:cap(buf)]) }()
	buf = append(buf, head...)
	const digits = "0123456789abcdef"
	for i, c := range key {
		if i > 0 && i%16 == 0 {
			buf = append(buf, "\n\t\t"...)
		}
		buf = append(buf, digits[c>>4], digits[c&0x0f], ' ')
	}
	buf = append(buf, '\n')
	_, err := w.Write(buf)
	return err
}
