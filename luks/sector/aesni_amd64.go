//go:build amd64 && gc && !purego

package sector

import "golang.org/x/sys/cpu"

// haveAESNI reports whether the AES-NI assembly may be used (read-only after start-up).
var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE2

// haveVAES reports whether the AVX-512 VAES variants may be used.
var haveVAES = haveAESNI && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ

// haveSerpentAVX512 reports whether the bitsliced AVX-512 Serpent (serpentEnc32) may be used.
var haveSerpentAVX512 = cpu.X86.HasAVX512F

// haveAESNIAVX reports whether aesniXTSPlain64Enc/Dec (AES-NI with VEX encodings) may be used.
var haveAESNIAVX = haveAESNI && cpu.X86.HasAVX

// wipeRegisters zeroes the vector registers after Go code moved key bytes through them (see
// clearVectorRegisters): the kernel writes them into every signal frame and asynchronous
// preemption onto the goroutine stack, both memory that is never cleared.
func wipeRegisters() { clearVectorRegisters(cpu.X86.HasAVX, cpu.X86.HasAVX512F) }
