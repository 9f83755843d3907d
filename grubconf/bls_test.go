package grubconf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBLSFixtures(t *testing.T) {
	in := fixture(t, "08-al2023-bls-entry.conf")
	e := parseBLS(in)
	require.Equal(t, in, e.Bytes())
	assert.False(t, e.UsesKernelopts())
	require.True(t, e.AddArg("rd.luks=0"))
	golden(t, "08-al2023-bls-entry.conf.add-rd.luks=0", e.Bytes())
	assert.False(t, e.AddArg("rd.luks=0"))
	require.True(t, e.RemoveArg("rd.luks=0"))
	assert.Equal(t, in, e.Bytes())

	k := parseBLS(fixture(t, "09-centos8-stream-bls-entry-kernelopts.conf"))
	assert.True(t, k.UsesKernelopts())
	v, ok := k.Get("linux")
	assert.True(t, ok)
	assert.Equal(t, "/boot/vmlinuz-5.18.0", v)
}

func TestBLSShapes(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"tab separator", "title x\noptions\troot=/dev/sda1 ro\n", "title x\noptions\troot=/dev/sda1 ro rd.luks=0\n"},
		{"several options lines: last one", "options a\noptions b\n", "options a\noptions b rd.luks=0\n"},
		{"already in an earlier line", "options rd.luks=0\noptions b\n", "options rd.luks=0\noptions b\n"},
		{"empty options", "options\n", "options rd.luks=0\n"},
		{"no options line", "title x\nlinux /v", "title x\nlinux /v\noptions rd.luks=0\n"},
		{"CRLF", "options ro\r\n", "options ro rd.luks=0\r\n"},
		{"comment mentioning options", "# options x\n", "# options x\noptions rd.luks=0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseBLS([]byte(tt.in))
			require.Equal(t, tt.in, string(e.Bytes()))
			e.AddArg("rd.luks=0")
			assert.Equal(t, tt.want, string(e.Bytes()))
			assert.True(t, hasCmdlineArg(e.Options(), "rd.luks=0"))
		})
	}
}

func FuzzBLS(f *testing.F) {
	f.Add(fixture(f, "08-al2023-bls-entry.conf"))
	f.Add(fixture(f, "09-centos8-stream-bls-entry-kernelopts.conf"))
	f.Add([]byte("options\t\"a b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := parseBLS(b)
		require.Equal(t, b, e.Bytes())
		had := hasCmdlineArg(e.Options(), "rd.luks=0")
		if e.AddArg("rd.luks=0") {
			require.False(t, had)
			re := parseBLS(e.Bytes())
			if hasCmdlineArg(re.Options(), "rd.luks=0") {
				require.False(t, re.AddArg("rd.luks=0"))
			}
		}
	})
}
