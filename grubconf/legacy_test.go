package grubconf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var legacyFixtures = []struct {
	file    string
	entries int
}{
	{"01-amazon-linux-2011.09-pv-menu.lst", 1},
	{"02-amazon-linux-2018.03-hvm-menu.lst", 2},
	{"03-amazon-linux-2015.09-pv-fallback-menu.lst", 1},
	{"04-centos6-anaconda-grub.conf", 2},
	{"05-fedora15-encrypted-root-grub.conf", 2},
	{"06-rhel7-xen-pvgrub-grub.conf", 1},
	{"12-grubby-test-grub.2-rhl73-chainloader.conf", 2},
}

// TestLegacyFixtures: round trip, golden add, idempotence and remove-restores for every
// legacy sample and both argument spellings.
func TestLegacyFixtures(t *testing.T) {
	for _, fx := range legacyFixtures {
		for _, arg := range []string{"rd_NO_LUKS", "rd.luks=0"} {
			t.Run(fx.file+"/"+arg, func(t *testing.T) {
				in := fixture(t, fx.file)
				f := parseLegacy(in)
				require.Equal(t, in, f.Bytes(), "round trip")
				require.Len(t, f.Entries(), fx.entries)

				had := f.HasArg(arg)
				changed := f.AddArg(arg)
				assert.Equal(t, !had, changed)
				out := f.Bytes()
				golden(t, fx.file+".add-"+arg, out)
				assert.True(t, f.HasArg(arg))
				assertOnlyArgLinesChanged(t, in, out)

				again := parseLegacy(out)
				assert.False(t, again.AddArg(arg), "idempotent")
				assert.Equal(t, out, again.Bytes())

				if !had {
					require.True(t, again.RemoveArg(arg))
					assert.Equal(t, string(in), string(again.Bytes()), "remove restores the original bytes")
				}
			})
		}
	}
}

// assertOnlyArgLinesChanged checks that every changed line is a kernel/module line whose
// old content is a prefix of the new one (nothing but an appended argument).
func assertOnlyArgLinesChanged(t *testing.T, in, out []byte) {
	t.Helper()
	a, b := splitLines(in), splitLines(out)
	require.Equal(t, len(a), len(b), "no line added or removed")
	for i := range a {
		if string(a[i]) == string(b[i]) {
			continue
		}
		kw := strings.Fields(string(a[i]))[0]
		assert.Contains(t, []string{"kernel", "module", "#"}, kw, "line %d", i+1)
		oa := strings.TrimRight(string(a[i]), " \r\n")
		assert.True(t, strings.HasPrefix(string(b[i]), oa), "line %d keeps its bytes: %q -> %q", i+1, a[i], b[i])
	}
}

func TestLegacyShapes(t *testing.T) {
	tests := []struct {
		name, in, want string
		entries        []int
	}{
		{
			name: "xen multiboot: first module line",
			in:   "title Xen\n\troot (hd0,0)\n\tkernel /xen.gz dom0_mem=1024M\n\tmodule /vmlinuz-2.6.18 ro root=/dev/sda1\n\tmodule /initrd-2.6.18.img\n",
			want: "title Xen\n\troot (hd0,0)\n\tkernel /xen.gz dom0_mem=1024M\n\tmodule /vmlinuz-2.6.18 ro root=/dev/sda1 rd_NO_LUKS\n\tmodule /initrd-2.6.18.img\n",
		},
		{
			name: "= separators and kernel options",
			in:   "default=0\ntitle=Linux\nkernel=--no-mem-option /vmlinuz ro\n",
			want: "default=0\ntitle=Linux\nkernel=--no-mem-option /vmlinuz ro rd_NO_LUKS\n",
		},
		{
			name: "kernel without arguments",
			in:   "title a\nkernel /vmlinuz\n",
			want: "title a\nkernel /vmlinuz rd_NO_LUKS\n",
		},
		{
			name: "device prefix, no root line",
			in:   "title a\nkernel (hd0,1)/vmlinuz-2.6 ro root=/dev/sda2\n",
			want: "title a\nkernel (hd0,1)/vmlinuz-2.6 ro root=/dev/sda2 rd_NO_LUKS\n",
		},
		{
			name: "CRLF and missing final newline",
			in:   "title a\r\nkernel /vmlinuz ro\r\ninitrd /i\r\ntitle b\r\nkernel /vmlinuz ro",
			want: "title a\r\nkernel /vmlinuz ro rd_NO_LUKS\r\ninitrd /i\r\ntitle b\r\nkernel /vmlinuz ro rd_NO_LUKS",
		},
		{
			name: "trailing blanks kept after the argument",
			in:   "title a\n\tkernel /vmlinuz ro console=hvc0 \t\n",
			want: "title a\n\tkernel /vmlinuz ro console=hvc0 rd_NO_LUKS \t\n",
		},
		{
			name: "mid-line # is data, indented # is a comment",
			in:   "title a\n   # kernel /old ro\nkernel /vmlinuz ro x=#1\n",
			want: "title a\n   # kernel /old ro\nkernel /vmlinuz ro x=#1 rd_NO_LUKS\n",
		},
		{
			name: "kernel lines before the first title are not entries",
			in:   "kernel /stray ro\ntitle a\nkernel /vmlinuz ro\n",
			want: "kernel /stray ro\ntitle a\nkernel /vmlinuz ro rd_NO_LUKS\n",
		},
		{
			name: "backslash-newline continuation",
			in:   "title a\nkernel /vmlinuz ro \\\n  quiet\ninitrd /i\n",
			want: "title a\nkernel /vmlinuz ro \\\n  quiet rd_NO_LUKS\ninitrd /i\n",
		},
		{
			name: "Debian kopt magic comment edited too; ## examples not",
			in:   "## ## Start Default Options ##\n## e.g. kopt=root=/dev/hda1 ro\n# kopt=root=LABEL=cloudimg-rootfs ro console=hvc0\n## ## End Default Options ##\n\ntitle Ubuntu\nroot (hd0)\nkernel /boot/vmlinuz root=LABEL=cloudimg-rootfs ro console=hvc0\n",
			want: "## ## Start Default Options ##\n## e.g. kopt=root=/dev/hda1 ro\n# kopt=root=LABEL=cloudimg-rootfs ro console=hvc0 rd_NO_LUKS\n## ## End Default Options ##\n\ntitle Ubuntu\nroot (hd0)\nkernel /boot/vmlinuz root=LABEL=cloudimg-rootfs ro console=hvc0 rd_NO_LUKS\n",
		},
		{
			name:    "chosen entries only (kopt untouched)",
			in:      "# kopt=ro\ntitle a\nkernel /a ro\ntitle b\nkernel /b ro\ntitle c\nkernel /c ro\n",
			want:    "# kopt=ro\ntitle a\nkernel /a ro\ntitle b\nkernel /b ro rd_NO_LUKS\ntitle c\nkernel /c ro rd_NO_LUKS\n",
			entries: []int{1, 2},
		},
		{
			name: "invalid UTF-8 kept",
			in:   "title \xff\xfe\nkernel /vmlinuz ro lang=\xc3\x28\n",
			want: "title \xff\xfe\nkernel /vmlinuz ro lang=\xc3\x28 rd_NO_LUKS\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseLegacy([]byte(tt.in))
			require.Equal(t, tt.in, string(f.Bytes()))
			require.True(t, f.AddArg("rd_NO_LUKS", tt.entries...))
			assert.Equal(t, tt.want, string(f.Bytes()))
			assert.False(t, f.AddArg("rd_NO_LUKS", tt.entries...))
			require.True(t, f.RemoveArg("rd_NO_LUKS", tt.entries...))
			assert.Equal(t, tt.in, string(f.Bytes()))
		})
	}
}

func TestLegacyEntries(t *testing.T) {
	f := parseLegacy(fixture(t, "05-fedora15-encrypted-root-grub.conf"))
	e := f.Entries()
	require.Len(t, e, 2)
	assert.Equal(t, "Fedora (2.6.38.6-26.rc1.fc15.i686)", e[0].Title)
	assert.Equal(t, "/vmlinuz-2.6.38.6-26.rc1.fc15.i686", e[0].Kernel)
	assert.True(t, strings.HasPrefix(e[0].Cmdline, "ro root=/dev/mapper/vg_intel-lv_root rd_LUKS_UUID=luks-ea29e6e7"))
	assert.Equal(t, "Other", e[1].Title)
	assert.Empty(t, e[1].Kernel, "chainloader entry")

	x := parseLegacy([]byte("title X\nkernel /xen.gz\nmodule /vmlinuz ro a=b\nmodule /initrd\n")).Entries()
	require.Len(t, x, 1)
	assert.True(t, x[0].Multiboot)
	assert.Equal(t, "ro a=b", x[0].Cmdline)
}

func FuzzLegacy(f *testing.F) {
	for _, fx := range legacyFixtures {
		f.Add(fixture(f, fx.file))
	}
	f.Add([]byte("title a\r\nkernel /v ro \\\r\n x\r\n"))
	f.Add([]byte("# kopt=ro\ntitle=x\nkernel=/v\nmodule /m \"a b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lf := parseLegacy(b)
		require.Equal(t, b, lf.Bytes(), "render(parse(x)) == x")
		_ = lf.Entries()
		before := lf.Bytes()
		if lf.AddArg("rd_NO_LUKS") {
			out := lf.Bytes()
			re := parseLegacy(out)
			require.Equal(t, out, re.Bytes())
			require.False(t, re.AddArg("rd_NO_LUKS"), "idempotent on %q", out)
			if !strings.Contains(string(before), "rd_NO_LUKS") {
				require.True(t, re.RemoveArg("rd_NO_LUKS"))
				require.Equal(t, string(before), string(re.Bytes()))
			}
		}
	})
}

func BenchmarkLegacyAddArg(b *testing.B) {
	in := fixture(b, "04-centos6-anaconda-grub.conf")
	b.ReportAllocs()
	for b.Loop() {
		f := parseLegacy(in)
		f.AddArg("rd_NO_LUKS")
		_ = f.Bytes()
	}
}

// TestEditArgs: the per-line edit both GRUB configuration editors share shifts the edits
// by the argument offset, keeps the line terminator and the entry number, and reports
// "no change" without touching the line when fn asks for nothing.
func TestEditArgs(t *testing.T) {
	for _, tc := range []struct {
		name, line, add, want string
		changed               bool
	}{
		{"add", "\tkernel /vmlinuz ro root=/dev/xvda1\r\n", "rd_NO_LUKS", "\tkernel /vmlinuz ro root=/dev/xvda1 rd_NO_LUKS\r\n", true},
		{"present", "kernel /vmlinuz ro rd_NO_LUKS\n", "rd_NO_LUKS", "kernel /vmlinuz ro rd_NO_LUKS\n", false},
		{"continued", "linux /vmlinuz ro \\\n  quiet\n", "rd.luks=0", "linux /vmlinuz ro \\\n  quiet rd.luks=0\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := parseLegacyLine([]byte(tc.line))
			l.entry = 7
			base := l.rest
			got := l.editArgs(base, 1, func(m string, skip int) []textEdit {
				if e, ok := addArgEdit(m, skip, tc.add); ok {
					return []textEdit{e}
				}
				return nil
			})
			assert.Equal(t, tc.changed, got)
			assert.Equal(t, tc.want, string(l.raw))
			assert.Equal(t, 7, l.entry, "entry kept across the reparse")
		})
	}
}
