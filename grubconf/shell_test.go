package grubconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shValue sources the files in order with the real POSIX shell and returns the variable.
func shValue(t *testing.T, name string, files ...string) string {
	t.Helper()
	sh := testenv.LookPath(t, "sh", "apt-get install dash")
	script := ""
	for i := range files {
		script += `. "$` + string(rune('1'+i)) + `"; `
	}
	script += `printf %s "$` + name + `"`
	args := append([]string{"-c", script, "sh"}, files...)
	cmd := exec.Command(sh, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sh: %s", out)
	// `sh -n` must accept the file as well.
	for _, f := range files {
		o, err := exec.Command(sh, "-n", f).CombinedOutput()
		require.NoError(t, err, "sh -n %s: %s", f, o)
	}
	return string(out)
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func TestShellAddArgQuoting(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"double quotes", `GRUB_CMDLINE_LINUX="quiet splash"` + "\n", `GRUB_CMDLINE_LINUX="quiet splash rd.luks=0"` + "\n"},
		{"empty double quotes", `GRUB_CMDLINE_LINUX=""` + "\n", `GRUB_CMDLINE_LINUX="rd.luks=0"` + "\n"},
		{"single quotes", `GRUB_CMDLINE_LINUX='quiet $notexpanded'` + "\n", `GRUB_CMDLINE_LINUX='quiet $notexpanded rd.luks=0'` + "\n"},
		{"empty single quotes", "GRUB_CMDLINE_LINUX=''\n", "GRUB_CMDLINE_LINUX='rd.luks=0'\n"},
		{"unquoted", "GRUB_CMDLINE_LINUX=quiet\n", `GRUB_CMDLINE_LINUX=quiet\ rd.luks=0` + "\n"},
		{"unquoted empty", "GRUB_CMDLINE_LINUX=\n", "GRUB_CMDLINE_LINUX=rd.luks=0\n"},
		{"escaped space unquoted", `GRUB_CMDLINE_LINUX=a\ b` + "\n", `GRUB_CMDLINE_LINUX=a\ b\ rd.luks=0` + "\n"},
		{"escapes inside double quotes", `GRUB_CMDLINE_LINUX="a=\"x y\" b=\$c"` + "\n", `GRUB_CMDLINE_LINUX="a=\"x y\" b=\$c rd.luks=0"` + "\n"},
		{"mixed quoting", `GRUB_CMDLINE_LINUX="a "'b'` + "\n", `GRUB_CMDLINE_LINUX="a "'b rd.luks=0'` + "\n"},
		{"export", `export GRUB_CMDLINE_LINUX="ro"` + "\n", `export GRUB_CMDLINE_LINUX="ro rd.luks=0"` + "\n"},
		{"trailing comment and space", `GRUB_CMDLINE_LINUX="ro " # keep` + "\n", `GRUB_CMDLINE_LINUX="ro rd.luks=0 " # keep` + "\n"},
		{"multi-line value", "GRUB_CMDLINE_LINUX=\"ro\n  quiet\"\n", "GRUB_CMDLINE_LINUX=\"ro\n  quiet rd.luks=0\"\n"},
		{"last assignment wins", "GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"b\"\n", "GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"b rd.luks=0\"\n"},
		{"self reference", "GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX b\"\n", "GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX b rd.luks=0\"\n"},
		{"empty reference", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"\n", "GRUB_CMDLINE_LINUX=\"rd.luks=0 $GRUB_CMDLINE_LINUX\"\n"},
		{"only a reference", "X=\"q\"\nGRUB_CMDLINE_LINUX=\"${X}\"\n", "X=\"q\"\nGRUB_CMDLINE_LINUX=\"${X} rd.luks=0\"\n"},
		{"not assigned: appended", "GRUB_TIMEOUT=5\n", "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
		{"not assigned, no final newline", "GRUB_TIMEOUT=5", "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
		{"commented assignment ignored", "#GRUB_CMDLINE_LINUX=\"x\"\n", "#GRUB_CMDLINE_LINUX=\"x\"\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
		{"_DEFAULT is not clobbered", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
		{"_DEFAULT after LINUX is not clobbered", "GRUB_CMDLINE_LINUX=\"ro\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n", "GRUB_CMDLINE_LINUX=\"ro rd.luks=0\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"},
		{"backquotes elsewhere", "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\nGRUB_CMDLINE_LINUX=\"\"\n", "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
		{"CRLF line", "GRUB_CMDLINE_LINUX=\"ro\"\r\n", "GRUB_CMDLINE_LINUX=\"ro rd.luks=0\"\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseShell([]byte(tt.in))
			require.Equal(t, tt.in, string(f.Bytes()))
			before := f.Eval(nil)
			changed, err := f.AddArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil)
			require.NoError(t, err)
			require.True(t, changed)
			out := string(f.Bytes())
			assert.Equal(t, tt.want, out)
			after := f.Eval(nil)
			assert.True(t, hasCmdlineArg(after["GRUB_CMDLINE_LINUX"], "rd.luks=0"))
			assert.Equal(t, before["GRUB_CMDLINE_LINUX_DEFAULT"], after["GRUB_CMDLINE_LINUX_DEFAULT"])
			again, err := parseShell([]byte(out)).AddArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil)
			require.NoError(t, err)
			assert.False(t, again, "idempotent")

			// The real shell agrees: the argument is there, the rest unchanged.
			if strings.Contains(tt.in, "\r") || strings.Contains(tt.in, "`") {
				return
			}
			pin, pout := writeTemp(t, "in", []byte(tt.in)), writeTemp(t, "out", []byte(out))
			shBefore, shAfter := shValue(t, "GRUB_CMDLINE_LINUX", pin), shValue(t, "GRUB_CMDLINE_LINUX", pout)
			assert.Equal(t, before["GRUB_CMDLINE_LINUX"], shBefore, "our evaluator matches sh")
			assert.Equal(t, after["GRUB_CMDLINE_LINUX"], shAfter, "our evaluator matches sh")
			want, _ := addCmdlineArg(shBefore, "rd.luks=0")
			if tt.name == "empty reference" {
				want += " " // the blank kept before the (empty) expansion
			}
			assert.Equal(t, want, shAfter, "sh sees exactly the old value plus the argument")
			assert.Equal(t, shValue(t, "GRUB_CMDLINE_LINUX_DEFAULT", pin), shValue(t, "GRUB_CMDLINE_LINUX_DEFAULT", pout))

			// Removing restores the bytes where the token sits in one quoting context.
			rf := parseShell([]byte(out))
			if ok, err := rf.RemoveArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil); err == nil && ok && !strings.Contains(tt.name, "appended") && !strings.Contains(tt.name, "not assigned") && !strings.Contains(tt.name, "ignored") && tt.name != "empty reference" {
				assert.Equal(t, tt.in, string(rf.Bytes()))
			}
		})
	}
}

func TestShellFixtures(t *testing.T) {
	tests := []struct {
		file, variable string
	}{
		{"07-amazon-linux-2-etc-default-grub", "GRUB_CMDLINE_LINUX_DEFAULT"},
		{"10-ubuntu-22.04-etc-default-grub", "GRUB_CMDLINE_LINUX"},
		{"11-ubuntu-ec2-etc-default-grub.d-50-cloudimg-settings.cfg", "GRUB_CMDLINE_LINUX_DEFAULT"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := fixture(t, tt.file)
			f := parseShell(in)
			require.Equal(t, in, f.Bytes())
			changed, err := f.AddArg(tt.variable, "rd.luks=0", nil)
			require.NoError(t, err)
			require.True(t, changed)
			golden(t, tt.file+".add-rd.luks=0", f.Bytes())
			pin, pout := writeTemp(t, "in", in), writeTemp(t, "out", f.Bytes())
			for _, v := range []string{"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "GRUB_TIMEOUT", "GRUB_TERMINAL"} {
				b, a := shValue(t, v, pin), shValue(t, v, pout)
				if v == tt.variable {
					want, _ := addCmdlineArg(b, "rd.luks=0")
					assert.Equal(t, want, a)
				} else {
					assert.Equal(t, b, a, v)
				}
			}
		})
	}
}

func TestShellEvalMatchesSh(t *testing.T) {
	src := "A=1\nB=\"$A two\"\nC='$A'\\ x\nexport D=${B}\nif true; then E=inner; fi\nF=\"a\\\\b\\$c\"\n"
	p := writeTemp(t, "f", []byte(src))
	env := parseShell([]byte(src)).Eval(nil)
	for _, v := range []string{"A", "B", "C", "D", "E", "F"} {
		assert.Equal(t, shValue(t, v, p), env[v], v)
	}
}

func TestShellRemoveUnsupported(t *testing.T) {
	f := parseShell([]byte("X=\"rd.luks\"'=0'\n"))
	_, err := f.RemoveArg("X", "rd.luks=0", nil)
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestGrubScriptCheck(t *testing.T) {
	// grub-script-check validates GRUB 2 script syntax; the GRUB_CMDLINE values end up in
	// generated linux lines, so check one built from an edited value.
	gsc := testenv.LookPath(t, "grub-script-check", "apt-get install grub-common")
	f := parseShell(fixture(t, "10-ubuntu-22.04-etc-default-grub"))
	_, err := f.AddArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil)
	require.NoError(t, err)
	v := f.Eval(nil)
	script := "menuentry 'x' {\n\tlinux /vmlinuz root=/dev/sda1 ro " + v["GRUB_CMDLINE_LINUX"] + " " + v["GRUB_CMDLINE_LINUX_DEFAULT"] + "\n}\n"
	p := writeTemp(t, "grub.cfg", []byte(script))
	out, err := exec.Command(gsc, p).CombinedOutput()
	assert.NoError(t, err, "%s", out)
}

func FuzzShell(f *testing.F) {
	for _, n := range []string{"07-amazon-linux-2-etc-default-grub", "10-ubuntu-22.04-etc-default-grub", "11-ubuntu-ec2-etc-default-grub.d-50-cloudimg-settings.cfg"} {
		f.Add(fixture(f, n))
	}
	f.Add([]byte("GRUB_CMDLINE_LINUX=\"$(x \"y\")\" `z` ${a:-b}\\\n'"))
	f.Add([]byte("GRUB_CMDLINE_LINUX='a'\"b\"c\\ d$e\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sf := parseShell(b)
		require.Equal(t, b, sf.Bytes(), "render(parse(x)) == x")
		_ = sf.Eval(nil)
		changed, err := sf.AddArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil)
		if err != nil || !changed {
			return
		}
		out := sf.Bytes()
		re := parseShell(out)
		require.Equal(t, out, re.Bytes())
		ch, err := re.AddArg("GRUB_CMDLINE_LINUX", "rd.luks=0", nil)
		if err == nil && hasCmdlineArg(re.Eval(nil)["GRUB_CMDLINE_LINUX"], "rd.luks=0") {
			require.False(t, ch, "idempotent once in effect: %q", out)
		}
	})
}
