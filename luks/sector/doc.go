// Package sector implements dm-crypt sector encryption as used by LUKS1: cipher
// specification parsing, IV generators and block chaining modes over 512-byte sectors.
// It knows nothing of LUKS headers.
package sector
