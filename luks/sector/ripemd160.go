package sector

import (
	"encoding/binary"
	"errors"
	"hash"
	"math/bits"
)

// RIPEMD-160 (Dobbertin, Bosselaers, Preneel; ISO/IEC 10118-3). golang.org/x/crypto has one,
// deprecated and without state marshaling, which makes crypto/hmac rehash the padded key on
// every PBKDF2 iteration; this one marshals, so PBKDF2-RIPEMD160 runs at twice the speed.

const (
	rmdSize      = 20
	rmdBlockSize = 64
)

type ripemd160 struct {
	h    [5]uint32
	buf  [rmdBlockSize]byte
	nbuf int
	n    uint64
}

func newRIPEMD160() hash.Hash {
	d := new(ripemd160)
	d.Reset()
	return d
}

func (d *ripemd160) Size() int      { return rmdSize }
func (d *ripemd160) BlockSize() int { return rmdBlockSize }

func (d *ripemd160) Reset() {
	d.h = [5]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}
	d.nbuf = 0
	d.n = 0
}

func (d *ripemd160) Write(p []byte) (int, error) {
	n := len(p)
	d.n += uint64(n)
	if d.nbuf > 0 {
		c := copy(d.buf[d.nbuf:], p)
		d.nbuf += c
		p = p[c:]
		if d.nbuf == rmdBlockSize {
			d.block(d.buf[:])
			d.nbuf = 0
		}
	}
	for len(p) >= rmdBlockSize {
		d.block(p[:rmdBlockSize])
		p = p[rmdBlockSize:]
	}
	if len(p) > 0 {
		d.nbuf = copy(d.buf[:], p)
	}
	return n, nil
}

func (d *ripemd160) Sum(in []byte) []byte {
	c := *d
	var pad [rmdBlockSize + 8]byte
	pad[0] = 0x80
	padLen := 56 - c.nbuf
	if padLen <= 0 {
		padLen += rmdBlockSize
	}
	bitLen := c.n << 3
	c.Write(pad[:padLen])
	binary.LittleEndian.PutUint64(pad[:8], bitLen)
	c.Write(pad[:8])
	var out [rmdSize]byte
	for i, v := range c.h {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return append(in, out[:]...)
}

// Message word order and rotation amounts of the left and right lines, 16 steps per round.
var (
	rmdRL = [80]uint8{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
		3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
		1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
		4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
	}
	rmdRR = [80]uint8{
		5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
		6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
		15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
		8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
		12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
	}
	rmdSL = [80]uint8{
		11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
		7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
		11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
		11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
		9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
	}
	rmdSR = [80]uint8{
		8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
		9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
		9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
		15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
		8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
	}
	rmdKL = [5]uint32{0x00000000, 0x5a827999, 0x6ed9eba1, 0x8f1bbcdc, 0xa953fd4e}
	rmdKR = [5]uint32{0x50a28be6, 0x5c4dd124, 0x6d703ef3, 0x7a6d76e9, 0x00000000}
)

func (d *ripemd160) block(p []byte) {
	var x [16]uint32
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(p[4*i:])
	}
	al, bl, cl, dl, el := d.h[0], d.h[1], d.h[2], d.h[3], d.h[4]
	ar, br, cr, dr, er := al, bl, cl, dl, el
	// One loop per round so that each boolean function is inlined; the right line uses the
	// functions in reverse order.
	var t uint32
	for j := 0; j < 16; j++ {
		t = bits.RotateLeft32(al+(bl^cl^dl)+x[rmdRL[j]], int(rmdSL[j])) + el
		al, el, dl, cl, bl = el, dl, bits.RotateLeft32(cl, 10), bl, t
		t = bits.RotateLeft32(ar+(br^(cr|^dr))+x[rmdRR[j]]+rmdKR[0], int(rmdSR[j])) + er
		ar, er, dr, cr, br = er, dr, bits.RotateLeft32(cr, 10), br, t
	}
	for j := 16; j < 32; j++ {
		t = bits.RotateLeft32(al+(bl&cl|^bl&dl)+x[rmdRL[j]]+rmdKL[1], int(rmdSL[j])) + el
		al, el, dl, cl, bl = el, dl, bits.RotateLeft32(cl, 10), bl, t
		t = bits.RotateLeft32(ar+(br&dr|cr&^dr)+x[rmdRR[j]]+rmdKR[1], int(rmdSR[j])) + er
		ar, er, dr, cr, br = er, dr, bits.RotateLeft32(cr, 10), br, t
	}
	for j := 32; j < 48; j++ {
		t = bits.RotateLeft32(al+((bl|^cl)^dl)+x[rmdRL[j]]+rmdKL[2], int(rmdSL[j])) + el
		al, el, dl, cl, bl = el, dl, bits.RotateLeft32(cl, 10), bl, t
		t = bits.RotateLeft32(ar+((br|^cr)^dr)+x[rmdRR[j]]+rmdKR[2], int(rmdSR[j])) + er
		ar, er, dr, cr, br = er, dr, bits.RotateLeft32(cr, 10), br, t
	}
	for j := 48; j < 64; j++ {
		t = bits.RotateLeft32(al+(bl&dl|cl&^dl)+x[rmdRL[j]]+rmdKL[3], int(rmdSL[j])) + el
		al, el, dl, cl, bl = el, dl, bits.RotateLeft32(cl, 10), bl, t
		t = bits.RotateLeft32(ar+(br&cr|^br&dr)+x[rmdRR[j]]+rmdKR[3], int(rmdSR[j])) + er
		ar, er, dr, cr, br = er, dr, bits.RotateLeft32(cr, 10), br, t
	}
	for j := 64; j < 80; j++ {
		t = bits.RotateLeft32(al+(bl^(cl|^dl))+x[rmdRL[j]]+rmdKL[4], int(rmdSL[j])) + el
		al, el, dl, cl, bl = el, dl, bits.RotateLeft32(cl, 10), bl, t
		t = bits.RotateLeft32(ar+(br^cr^dr)+x[rmdRR[j]], int(rmdSR[j])) + er
		ar, er, dr, cr, br = er, dr, bits.RotateLeft32(cr, 10), br, t
	}
	t = d.h[1] + cl + dr
	d.h[1] = d.h[2] + dl + er
	d.h[2] = d.h[3] + el + ar
	d.h[3] = d.h[4] + al + br
	d.h[4] = d.h[0] + bl + cr
	d.h[0] = t
}

const rmdMagic = "rmd\x01"

// MarshalBinary saves the running state (see the whirlpool type for why).
func (d *ripemd160) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(rmdMagic)+5*4+rmdBlockSize+8)
	b = append(b, rmdMagic...)
	for _, v := range d.h {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = append(b, d.buf[:d.nbuf]...)
	b = append(b, make([]byte, rmdBlockSize-d.nbuf)...)
	b = binary.BigEndian.AppendUint64(b, d.n)
	return b, nil
}

// UnmarshalBinary restores a state saved by MarshalBinary.
func (d *ripemd160) UnmarshalBinary(b []byte) error {
	if len(b) != len(rmdMagic)+5*4+rmdBlockSize+8 || string(b[:len(rmdMagic)]) != rmdMagic {
		return errors.New("ripemd160: invalid hash state")
	}
	b = b[len(rmdMagic):]
	for i := range d.h {
		d.h[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	b = b[20:]
	copy(d.buf[:], b[:rmdBlockSize])
	d.n = binary.BigEndian.Uint64(b[rmdBlockSize:])
	d.nbuf = int(d.n % rmdBlockSize)
	return nil
}
