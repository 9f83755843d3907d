package grubconf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []kernelArg
	}{
		{"", nil},
		{"   \t\n", nil},
		{"ro", []kernelArg{{Start: 0, End: 2, Raw: "ro", Name: "ro"}}},
		{" a=b  c=d=e", []kernelArg{
			{Start: 1, End: 4, Raw: "a=b", Name: "a", Value: "b", HasValue: true},
			{Start: 6, End: 11, Raw: "c=d=e", Name: "c", Value: "d=e", HasValue: true},
		}},
		{`x="a b" y`, []kernelArg{
			{Start: 0, End: 7, Raw: `x="a b"`, Name: "x", Value: "a b", HasValue: true},
			{Start: 8, End: 9, Raw: "y", Name: "y"},
		}},
		{`"q=a b"`, []kernelArg{{Start: 0, End: 7, Raw: `"q=a b"`, Name: "q", Value: "a b", HasValue: true}}},
		{`"flag with space"`, []kernelArg{{Start: 0, End: 17, Raw: `"flag with space"`, Name: "flag with space"}}},
		{"empty=", []kernelArg{{Start: 0, End: 6, Raw: "empty=", Name: "empty", HasValue: true}}},
		{`unterminated="a b`, []kernelArg{{Start: 0, End: 17, Raw: `unterminated="a b`, Name: "unterminated", Value: "a b", HasValue: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, splitArgs(tt.in))
		})
	}
}

func TestAddRemoveArg(t *testing.T) {
	tests := []struct {
		name, in, arg, want string
		changed             bool
	}{
		{"append", "ro quiet", "rd_NO_LUKS", "ro quiet rd_NO_LUKS", true},
		{"empty", "", "rd.luks=0", "rd.luks=0", true},
		{"blank only", "  ", "rd.luks=0", "rd.luks=0  ", true},
		{"trailing space kept after the new arg", "ro console=hvc0 ", "rd_NO_LUKS", "ro console=hvc0 rd_NO_LUKS ", true},
		{"trailing newline kept", "ro quiet\n", "rd.luks=0", "ro quiet rd.luks=0\n", true},
		{"bare flag present", "ro rd_NO_LUKS quiet", "rd_NO_LUKS", "ro rd_NO_LUKS quiet", false},
		{"bare flag matches by name", "rd_NO_LUKS=1 ro", "rd_NO_LUKS", "rd_NO_LUKS=1 ro", false},
		{"value present", "rd.luks=0 ro", "rd.luks=0", "rd.luks=0 ro", false},
		{"last value wins: overridden", "rd.luks=0 rd.luks=1", "rd.luks=0", "rd.luks=0 rd.luks=1 rd.luks=0", true},
		{"different value", "rd.luks=1", "rd.luks=0", "rd.luks=1 rd.luks=0", true},
		{"prefix is not a match", "rd.luks.uuid=abc", "rd.luks=0", "rd.luks.uuid=abc rd.luks=0", true},
		{"quoted value", `x="a b"`, "rd.luks=0", `x="a b" rd.luks=0`, true},
		{"double space kept", "a  b", "c", "a  b c", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := addCmdlineArg(tt.in, tt.arg)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.changed, changed)
			assert.True(t, hasCmdlineArg(got, tt.arg), "argument must be in effect after AddArg")
			again, changed2 := addCmdlineArg(got, tt.arg)
			assert.False(t, changed2, "idempotent")
			assert.Equal(t, got, again)
			if tt.changed && !hasCmdlineArg(tt.in, parseKernelArg(tt.arg).Name) {
				back, ok := removeCmdlineArg(got, tt.arg)
				assert.True(t, ok)
				assert.Equal(t, tt.in, back, "remove undoes add")
			}
		})
	}
}

func TestRemoveArg(t *testing.T) {
	tests := []struct{ in, arg, want string }{
		{"a rd_NO_LUKS b", "rd_NO_LUKS", "a b"},
		{"rd_NO_LUKS a", "rd_NO_LUKS", "a"},
		{"rd_NO_LUKS rd_NO_LUKS a", "rd_NO_LUKS", "a"},
		{"a rd.luks=0 rd.luks=1", "rd.luks=0", "a rd.luks=1"},
		{"a rd.luks=0 rd.luks=1", "rd.luks", "a"},
		{"console=tty0 console=ttyS0", "console=ttyS0", "console=tty0"},
		{"only", "only", ""},
		{"a b", "c", "a b"},
	}
	for _, tt := range tests {
		got, _ := removeCmdlineArg(tt.in, tt.arg)
		assert.Equal(t, tt.want, got, "%q - %q", tt.in, tt.arg)
	}
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", "ro quiet", `a="b c" d`, "x=\"", "\"", "a\tb\nc", "rd.luks=0 rd.luks.uuid=1", "\xff\xfe=\x00"} {
		f.Add(s, "rd.luks=0")
	}
	f.Add("ro console=hvc0 ", "rd_NO_LUKS")
	f.Fuzz(func(t *testing.T, s, arg string) {
		args := splitArgs(s)
		prev := 0
		for _, a := range args {
			require.True(t, a.Start >= prev && a.End <= len(s) && a.Start < a.End)
			require.Equal(t, s[a.Start:a.End], a.Raw)
			prev = a.End
		}
		w := parseKernelArg(arg)
		if w.Name == "" || strings.ContainsAny(arg, "\" \t\n\v\f\r") || len(splitArgs(arg)) != 1 {
			return
		}
		if strings.Count(s, `"`)%2 == 1 {
			got, _ := addCmdlineArg(s, arg)
			require.Equal(t, s, got, "an open quote is never appended to")
			return
		}
		got, _ := addCmdlineArg(s, arg)
		require.True(t, hasCmdlineArg(got, arg), "%q + %q = %q", s, arg, got)
		again, changed := addCmdlineArg(got, arg)
		require.False(t, changed)
		require.Equal(t, got, again)
	})
}

func BenchmarkSplitArgs(b *testing.B) {
	s := "ro root=/dev/mapper/VolGroup-lv_root rd_NO_LUKS LANG=en_US.UTF-8 rd_NO_MD rd_LVM_LV=VolGroup/lv_swap SYSFONT=latarcyrheb-sun16 crashkernel=auto rd_LVM_LV=VolGroup/lv_root  KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM rhgb quiet"
	b.ReportAllocs()
	for b.Loop() {
		_ = splitArgs(s)
	}
}
