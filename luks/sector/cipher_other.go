//go:build !amd64 || !gc || purego

package sector

// No AES-NI here: newCipher never builds an aesSchedule's c.ni, so these are never called.

func (c *Cipher) cryptAESNI(dst, src []byte, first uint64, enc bool) { panic("sector: no AES-NI") }

func (c *Cipher) ivAESNI(iv *[16]byte, s uint64) { panic("sector: no AES-NI") }

func (k *aesSchedule) encryptBlock(dst, src *[16]byte) { panic("sector: no AES-NI") }
