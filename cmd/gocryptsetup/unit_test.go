package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		pos     []string
		check   func(t *testing.T, o *options)
		wantErr string // "subject: message" of the usage error
	}{
		{name: "options after the action", args: []string{"luksFormat", "img", "-c", "aes-cbc-essiv:sha256", "-s", "256", "--hash=sha1"},
			pos: []string{"luksFormat", "img"}, check: func(t *testing.T, o *options) {
				assert.Equal(t, "aes-cbc-essiv:sha256", o.cipher)
				assert.Equal(t, 256, o.keySize)
				assert.Equal(t, "sha1", o.hash)
			}},
		{name: "attached short values and bundles", args: []string{"-qvs256", "-S3", "isLuks", "x"},
			pos: []string{"isLuks", "x"}, check: func(t *testing.T, o *options) {
				assert.True(t, o.batch)
				assert.True(t, o.verbose)
				assert.Equal(t, 256, o.keySize)
				assert.Equal(t, 3, o.keySlot)
			}},
		{name: "key file stdin and sizes", args: []string{"open", "--test-passphrase", "-d", "-", "--keyfile-offset=2", "-l5", "img"},
			pos: []string{"open", "img"}, check: func(t *testing.T, o *options) {
				assert.Equal(t, "-", o.keyFile)
				assert.Equal(t, int64(2), o.keyfileOffset)
				assert.Equal(t, int64(5), o.keyfileSize)
				assert.True(t, o.testPassphrase)
			}},
		{name: "aliases", args: []string{"luksDump", "--dump-master-key", "--master-key-file", "k", "img"},
			pos: []string{"luksDump", "img"}, check: func(t *testing.T, o *options) {
				assert.True(t, o.dumpVolumeKey)
				assert.Equal(t, "k", o.volumeKeyFile)
				assert.True(t, o.set["volume-key-file"])
			}},
		{name: "double dash ends options", args: []string{"isLuks", "--", "-q"}, pos: []string{"isLuks", "-q"},
			check: func(t *testing.T, o *options) { assert.False(t, o.batch) }},
		{name: "lone dash is positional", args: []string{"luksFormat", "img", "-"}, pos: []string{"luksFormat", "img", "-"}},
		{name: "defaults", args: []string{"isLuks", "x"}, pos: []string{"isLuks", "x"}, check: func(t *testing.T, o *options) {
			assert.Equal(t, -1, o.keySlot)
			assert.Equal(t, 3, o.tries)
		}},
		{name: "unknown long", args: []string{"--foo", "isLuks"}, wantErr: "--foo: unknown option"},
		{name: "unknown short", args: []string{"-x"}, wantErr: "-x: unknown option"},
		{name: "missing argument", args: []string{"luksDump", "img", "--cipher"}, wantErr: "--cipher: missing argument"},
		{name: "bool with value", args: []string{"--batch-mode=3"}, wantErr: "--batch-mode=3: option does not take an argument"},
		{name: "bad number", args: []string{"-s", "abc"}, wantErr: ": invalid numeric value"},
		{name: "key size not bytes", args: []string{"-s", "100"}, wantErr: ": Key size must be a multiple of 8 bits"},
		{name: "negative slot", args: []string{"-S", "-3"}, wantErr: ": Key slot is invalid."},
		// cryptsetup 2.6 parses with strtoull: -1 is out of a uint32's range, and wraps to
		// 2^64-1 for a uint64 offset (which then cannot be seeked to).
		{name: "negative size", args: []string{"--keyfile-size", "-1"}, wantErr: ": invalid numeric value"},
		{name: "size beyond uint32", args: []string{"-l", "4294967296"}, wantErr: ": invalid numeric value"},
		{name: "hex number", args: []string{"-l", "0x10"}, wantErr: ": invalid numeric value"},
		{name: "negative read offset", args: []string{"--offset", "-1"}, wantErr: ": Negative number for option not permitted."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, pos, err := parseArgs(tc.args)
			if tc.wantErr != "" {
				var ue *usageError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, tc.wantErr, ue.subject+": "+ue.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.pos, pos)
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// fakeTerm answers password prompts from a list and records the prompts.
type fakeTerm struct {
	tty     bool
	answers []string
	prompts []string
}

func (f *fakeTerm) IsTerminal() bool { return f.tty }
func (f *fakeTerm) ReadPassword(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, errors.New("EOF")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func newTestApp(stdin string, term cli.Terminal, args ...string) (*app, *bytes.Buffer, *bytes.Buffer) {
	o, _, err := parseArgs(args)
	if err != nil {
		panic(err)
	}
	var out, errb bytes.Buffer
	return &app{ctx: context.Background(), prog: "gocryptsetup", stdin: cli.NewStdinReader(strings.NewReader(stdin)),
		stdout: &out, stderr: &errb, term: term, opts: o}, &out, &errb
}

func TestGetKey(t *testing.T) {
	tests := []struct {
		name    string
		tty     bool
		answers []string
		stdin   string
		src     keySource
		verify  bool
		want    string
		wantErr error
		prompts []string
	}{
		{name: "terminal prompt", tty: true, answers: []string{"pw"}, want: "pw", prompts: []string{"P: "}},
		{name: "terminal verify ok", tty: true, answers: []string{"pw", "pw"}, verify: true, want: "pw",
			prompts: []string{"P: ", "Verify passphrase: "}},
		{name: "terminal verify mismatch", tty: true, answers: []string{"pw", "px"}, verify: true, wantErr: errMismatch},
		{name: "terminal with offset", tty: true, answers: []string{"pw"}, src: keySource{offset: 1}, wantErr: errTermOffset},
		{name: "terminal size limit", tty: true, answers: []string{"password"}, src: keySource{size: 4}, want: "pass"},
		{name: "stdin line", stdin: "line one\nline two\n", want: "line one"},
		{name: "stdin without newline", stdin: "abc", want: "abc"},
		{name: "stdin empty line is an empty passphrase", stdin: "\n", want: ""},
		{name: "stdin nothing", stdin: "", wantErr: errNothingToRead},
		{name: "stdin offset and size", stdin: "xxsecretyy\n", src: keySource{offset: 2, size: 6}, want: "secret"},
		{name: "stdin key file dash keeps newlines", stdin: "a\nb\n", src: keySource{file: "-"}, want: "a\nb\n"},
		{name: "stdin key file dash empty", stdin: "", src: keySource{file: "-"}, wantErr: errNothingToRead},
		{name: "missing key file", src: keySource{file: "/nonexistent/key"}, wantErr: errKeyFileOpen},
		{name: "a piped stdin is never prompted", tty: false, answers: []string{"unused"}, stdin: "piped\n", want: "piped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTerm{tty: tc.tty, answers: tc.answers}
			a, _, _ := newTestApp(tc.stdin, ft, "isLuks", "x")
			got, err := a.getKey("P: ", tc.src, tc.verify)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			if tc.prompts != nil {
				assert.Equal(t, tc.prompts, ft.prompts)
			}
		})
	}
}

func TestConfirm(t *testing.T) {
	fail := &cliError{code: 1, msg: "Operation aborted.\n"}
	tests := []struct {
		name    string
		tty     bool
		args    []string
		stdin   string
		wantErr bool
		asked   bool
	}{
		{name: "YES on a terminal", tty: true, stdin: "YES\n", asked: true},
		{name: "lower-case yes refused", tty: true, stdin: "yes\n", wantErr: true, asked: true},
		{name: "EOF refused", tty: true, stdin: "", wantErr: true, asked: true},
		{name: "batch mode does not ask", tty: true, args: []string{"-q"}, stdin: "no\n"},
		{name: "piped stdin does not ask", tty: false, stdin: "no\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, out, _ := newTestApp(tc.stdin, &fakeTerm{tty: tc.tty}, append([]string{"isLuks"}, tc.args...)...)
			err := a.confirm("This will overwrite data on x irrevocably.", fail)
			if tc.wantErr {
				assert.Equal(t, fail, err)
			} else {
				assert.NoError(t, err)
			}
			if tc.asked {
				assert.Equal(t, "\nWARNING!\n========\nThis will overwrite data on x irrevocably.\n\nAre you sure? (Type 'yes' in capital letters): ", out.String())
			} else {
				assert.Empty(t, out.String())
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		err   error
		code  int
		lines []string
	}{
		{nil, 0, nil},
		{fmt.Errorf("keyslot 0: %w", luks.ErrWrongPassphrase), 2, []string{"No key available with this passphrase."}},
		{onDevice("x.img", fmt.Errorf("read: %w", luks.ErrNotLUKS)), 1, []string{"Device x.img is not a valid LUKS device."}},
		{onDevice("x.img", luks.ErrUnsupportedVersion), 1, []string{"Device x.img is not a valid LUKS device."}},
		{onDevice("x.img", &fs.PathError{Op: "open", Path: "x.img", Err: fs.ErrNotExist}), 4, []string{"Device x.img does not exist or access denied."}},
		{onDevice("x.img", &fs.PathError{Op: "open", Path: "x.img", Err: syscall.EACCES}), 4, []string{"Device x.img does not exist or access denied."}},
		{onDevice("/dev/null", errNotCompatible), 4, []string{"Device /dev/null is not compatible."}},
		{onDevice("e.img", luks.ErrDeviceTooSmall), 1, []string{"Device e.img is too small."}},
		{luks.ErrNoFreeKeyslot, 1, []string{"All key slots full."}},
		{fmt.Errorf("keyslot 3: %w", luks.ErrKeyslotInactive), 1, []string{"No usable keyslot is available."}},
		{fmt.Errorf("keyslot 0: %w", luks.ErrOutOfMemory), 3, []string{"Not enough available memory to open a keyslot."}},
		{errMismatch, 2, []string{"Passphrases do not match."}},
		{errNothingToRead, 1, []string{"Nothing to read on input."}},
		{&cliError{code: 1, msg: "Operation aborted.\n"}, 1, []string{"Operation aborted.", ""}},
		{&cliError{code: 1}, 1, nil},
		{fmt.Errorf("mapping: %w", syscall.EBUSY), 5, []string{"Mapping: device or resource busy."}},
		{context.Canceled, 1, []string{"Operation interrupted."}},
		{fmt.Errorf("cipher foo: %w", luks.ErrUnsupportedCipher), 1, nil},
	}
	for _, tc := range tests {
		name := "nil"
		if tc.err != nil {
			name = tc.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			code, lines := exitStatus(tc.err)
			assert.Equal(t, tc.code, code)
			if tc.lines != nil || tc.err == nil {
				assert.Equal(t, tc.lines, lines)
			} else if tc.err != nil && code != 0 {
				var ce *cliError
				if !errors.As(tc.err, &ce) {
					assert.NotEmpty(t, lines, "every failure but the deliberately silent ones has a message")
				}
			}
		})
	}
}

func TestStatusLine(t *testing.T) {
	assert.Equal(t, "Command successful.", statusLine(0))
	assert.Equal(t, "Command failed with code -1 (wrong or missing parameters).", statusLine(1))
	assert.Equal(t, "Command failed with code -2 (no permission or bad passphrase).", statusLine(2))
	assert.Equal(t, "Command failed with code -4 (wrong device or file specified).", statusLine(4))
	assert.Equal(t, "Command failed with code -5 (device already exists or device is busy).", statusLine(5))
}

func TestVerbTableUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range verbTable() {
		for _, n := range append([]string{v.Name}, v.Aliases...) {
			assert.False(t, seen[n], "duplicate verb %s", n)
			seen[n] = true
		}
		assert.NotNil(t, v.Run, v.Name)
		if v.MinArgs > 0 {
			assert.NotEmpty(t, v.Args, v.Name)
		}
		assert.NotEmpty(t, v.Summary, v.Name)
		assert.NotEmpty(t, v.Example, v.Name)
	}
}

// FuzzParseArgs: the option parser never panics and either fails with a usage error or
// returns options.
func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		s    string
		typ  numType
		want int64
		ok   bool
	}{
		{"8", numUint32, 8, true},
		{" \t+8", numUint32, 8, true},
		{"-0", numUint32, 0, true},
		{"4294967295", numUint32, 4294967295, true},
		{"4294967296", numUint32, 0, false},
		{"-1", numUint32, 0, false},
		{"-1", numUint64, math.MaxInt64, true}, // strtoull wraps; saturated to int64
		{"18446744073709551615", numUint64, math.MaxInt64, true},
		{"18446744073709551616", numUint64, 0, false},
		{"-2147483648", numInt32, -2147483648, true},
		{"2147483648", numInt32, 0, false},
		{"-9223372036854775808", numInt64, math.MinInt64, true},
		{"0x10", numInt64, 0, false},
		{"8 ", numUint32, 0, false},
		{"", numUint32, 0, false},
		{"+", numUint32, 0, false},
	} {
		got, err := parseNumber(tc.s, tc.typ)
		if !tc.ok {
			assert.Error(t, err, "%q", tc.s)
			continue
		}
		require.NoError(t, err, "%q", tc.s)
		assert.Equal(t, tc.want, got, "%q", tc.s)
	}
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"luksFormat img -s256 -q", "--foo", "-qvs", "--cipher", "-- -x", "-S -1", "--keyfile-offset=0x10 open"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, _, err := parseArgs(strings.Fields(s))
		if err != nil {
			var ue *usageError
			require.ErrorAs(t, err, &ue)
			return
		}
		require.NotNil(t, o)
	})
}
