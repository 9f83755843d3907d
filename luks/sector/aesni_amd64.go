//go:build amd64 && !purego

package sector

import "golang.org/x/sys/cpu"

// haveAESNI reports whether the AES-NI assembly may be used (read-only after start-up).
var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE2

// aesniXEXEnc: for i < n, dst[i] = E(src[i] ⊕ tw[i]) ⊕ tw[i] over 16-byte blocks, eight at a
// time (XTS, LRW and, with zero tw, ECB). rk is aesSchedule.enc, nr the round count.
//
//go:noescape
func aesniXEXEnc(nr int, rk *byte, dst, src, tw *byte, n int)

// aesniXEXDec is aesniXEXEnc with AES decryption; rk is aesSchedule.dec.
//
//go:noescape
func aesniXEXDec(nr int, rk *byte, dst, src, tw *byte, n int)

// aesniCBCEnc CBC-encrypts n blocks with the 16-byte IV at iv (serial by nature).
//
//go:noescape
func aesniCBCEnc(nr int, rk *byte, dst, src, iv *byte, n int)

// aesniCBCDec CBC-decrypts n blocks, eight in parallel; dst may equal src.
//
//go:noescape
func aesniCBCDec(nr int, rk *byte, dst, src, iv *byte, n int)

// haveVAES reports whether the AVX-512 VAES variants may be used.
var haveVAES = haveAESNI && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VAES

// vaesXEXEnc is aesniXEXEnc for n a multiple of 32, four blocks per ZMM register.
//
//go:noescape
func vaesXEXEnc(nr int, rk *byte, dst, src, tw *byte, n int)

// vaesXEXDec is aesniXEXDec for n a multiple of 32.
//
//go:noescape
func vaesXEXDec(nr int, rk *byte, dst, src, tw *byte, n int)

// vaesXTSEnc is XTS encryption of nsec 512-byte sectors; tw4 holds the first four tweaks of
// each sector (64 bytes per sector), the rest are derived in registers.
//
//go:noescape
func vaesXTSEnc(nr int, rk *byte, dst, src, tw4 *byte, nsec int)

// vaesXTSDec is vaesXTSEnc with decryption round keys.
//
//go:noescape
func vaesXTSDec(nr int, rk *byte, dst, src, tw4 *byte, nsec int)

// aesniCBCEnc8 CBC-encrypts eight consecutive 512-byte sectors in parallel, one chain per
// sector; ivs holds the eight 16-byte IVs.
//
//go:noescape
func aesniCBCEnc8(nr int, rk *byte, dst, src, ivs *byte)
