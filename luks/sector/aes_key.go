package sector

// aesSchedule holds AES round keys in the byte order AES-NI consumes: enc for the forward
// cipher (FIPS-197 key expansion), dec for the equivalent inverse cipher (FIPS-197 5.3.5:
// reversed order, InvMixColumns applied to the middle round keys).
type aesSchedule struct {
	rounds int
	enc    [15 * 16]byte
	dec    [15 * 16]byte
}

func (k *aesSchedule) wipe() { *k = aesSchedule{} }

func aesMul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// expandAESKey returns the schedule for a 16-, 24- or 32-byte key; the caller checked the size.
func expandAESKey(key []byte) *aesSchedule {
	nk := len(key) / 4
	k := &aesSchedule{rounds: nk + 6}
	words := 4 * (k.rounds + 1)
	w := k.enc[:4*words]
	copy(w, key)
	wipeRegisters() // copy moved the key through vector registers
	rcon := byte(1)
	for i := nk; i < words; i++ {
		var t [4]byte
		copy(t[:], w[4*(i-1):4*i])
		switch {
		case i%nk == 0:
			t = [4]byte{aesSbox[t[1]] ^ rcon, aesSbox[t[2]], aesSbox[t[3]], aesSbox[t[0]]}
			rcon = aesMul(rcon, 2)
		case nk > 6 && i%nk == 4:
			t = [4]byte{aesSbox[t[0]], aesSbox[t[1]], aesSbox[t[2]], aesSbox[t[3]]}
		}
		for j := 0; j < 4; j++ {
			w[4*i+j] = w[4*(i-nk)+j] ^ t[j]
		}
	}
	nr := k.rounds
	copy(k.dec[0:16], k.enc[16*nr:16*nr+16])
	copy(k.dec[16*nr:16*nr+16], k.enc[0:16])
	wipeRegisters() // the second copy moved round key 0, the key itself, through X0
	for r := 1; r < nr; r++ {
		src := k.enc[16*(nr-r) : 16*(nr-r)+16]
		dst := k.dec[16*r : 16*r+16]
		for c := 0; c < 4; c++ {
			a0, a1, a2, a3 := src[4*c], src[4*c+1], src[4*c+2], src[4*c+3]
			dst[4*c] = aesMul(a0, 14) ^ aesMul(a1, 11) ^ aesMul(a2, 13) ^ aesMul(a3, 9)
			dst[4*c+1] = aesMul(a0, 9) ^ aesMul(a1, 14) ^ aesMul(a2, 11) ^ aesMul(a3, 13)
			dst[4*c+2] = aesMul(a0, 13) ^ aesMul(a1, 9) ^ aesMul(a2, 14) ^ aesMul(a3, 11)
			dst[4*c+3] = aesMul(a0, 11) ^ aesMul(a1, 13) ^ aesMul(a2, 9) ^ aesMul(a3, 14)
		}
	}
	return k
}
