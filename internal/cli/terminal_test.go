package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

// fakeTerm answers prompts from a list and records them.
type fakeTerm struct {
	tty     bool
	answers []string
	prompts []string
}

func (f *fakeTerm) IsTerminal() bool { return f.tty }
func (f *fakeTerm) ReadPassword(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, io.EOF
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func TestKeyInputRead(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("xxsecret\nyy"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	tests := []struct {
		name    string
		tty     bool
		answers []string
		stdin   string
		src     KeySource
		verify  bool
		want    string
		wantErr error
		prompts []string
	}{
		{name: "terminal prompt", tty: true, answers: []string{"pw"}, want: "pw", prompts: []string{"P: "}},
		{name: "terminal verify ok", tty: true, answers: []string{"pw", "pw"}, verify: true, want: "pw", prompts: []string{"P: ", VerifyPrompt}},
		{name: "terminal verify mismatch", tty: true, answers: []string{"pw", "px"}, verify: true, wantErr: ErrPassphraseMismatch},
		{name: "terminal verify EOF", tty: true, answers: []string{"pw"}, verify: true, wantErr: ErrPassphraseMismatch},
		{name: "terminal EOF", tty: true, wantErr: ErrNothingToRead},
		{name: "terminal with offset", tty: true, answers: []string{"pw"}, src: KeySource{Offset: 1}, wantErr: ErrTerminalOffset},
		{name: "terminal size limit", tty: true, answers: []string{"password"}, src: KeySource{Size: 4}, want: "pass"},
		{name: "terminal keeps 512 characters", tty: true, answers: []string{strings.Repeat("t", 600)}, want: strings.Repeat("t", MaxPassphrase)},
		{name: "terminal verify compares what is kept", tty: true, answers: []string{strings.Repeat("t", 600), strings.Repeat("t", 700)}, verify: true, want: strings.Repeat("t", MaxPassphrase)},
		{name: "stdin line", stdin: "line one\nline two\n", want: "line one"},
		{name: "stdin without newline", stdin: "abc", want: "abc"},
		{name: "stdin empty line is an empty passphrase", stdin: "\n", want: ""},
		{name: "stdin nothing", stdin: "", wantErr: ErrNothingToRead},
		{name: "stdin offset and size", stdin: "xxsecretyy\n", src: KeySource{Offset: 2, Size: 6}, want: "secret"},
		{name: "stdin offset past the end", stdin: "x", src: KeySource{Offset: 2}, wantErr: ErrNothingToRead},
		{name: "stdin long line kept whole", stdin: strings.Repeat("l", 3000) + "\nrest", want: strings.Repeat("l", 3000)},
		{name: "dash keeps newlines", stdin: "a\nb\n", src: KeySource{File: "-"}, want: "a\nb\n"},
		{name: "dash empty", stdin: "", src: KeySource{File: "-"}, wantErr: ErrNothingToRead},
		{name: "dash too large", stdin: strings.Repeat("k", luks.MaxKeyFileSize+1), src: KeySource{File: "-"}, wantErr: luks.ErrKeyFileTooLarge},
		{name: "key file offset and size", src: KeySource{File: key, Offset: 2, Size: 7}, want: "secret\n"},
		{name: "key file keeps newlines", src: KeySource{File: key}, want: "xxsecret\nyy"},
		{name: "empty key file is an empty key", src: KeySource{File: empty}, want: ""},
		{name: "missing key file", src: KeySource{File: filepath.Join(dir, "nope")}, wantErr: ErrKeyFileOpen},
		{name: "a piped stdin is never prompted", answers: []string{"unused"}, stdin: "piped\n", want: "piped"},
		{name: "a key file is never prompted", tty: true, answers: []string{"unused"}, src: KeySource{File: key, Offset: 2, Size: 6}, want: "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTerm{tty: tc.tty, answers: tc.answers}
			got, err := KeyInput{Stdin: bufio.NewReader(strings.NewReader(tc.stdin)), Term: ft}.Read("P: ", tc.src, tc.verify)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, got)
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

// TestReadKeyLineLeavesTheRest: a line read for one passphrase leaves the next line for the
// next read (luksAddKey reads the existing and the new passphrase from one stdin).
func TestReadKeyLineLeavesTheRest(t *testing.T) {
	in := bufio.NewReader(strings.NewReader("old\nnew\n"))
	k := KeyInput{Stdin: in, Term: &fakeTerm{}}
	a, err := k.Read("", KeySource{}, false)
	require.NoError(t, err)
	b, err := k.Read("", KeySource{}, true) // verify does not apply off a terminal
	require.NoError(t, err)
	assert.Equal(t, []string{"old", "new"}, []string{string(a), string(b)})
	_, err = k.Read("", KeySource{}, false)
	assert.ErrorIs(t, err, ErrNothingToRead)
}

func TestReadKeyLineSize(t *testing.T) {
	line := strings.Repeat("k", 20000)
	for _, tc := range []struct {
		size int64
		want int
	}{{20000, 20000}, {12345, 12345}, {0, 20000}} {
		p, err := ReadKeyLine(strings.NewReader(line+"\nnext\n"), KeySource{Size: tc.size})
		require.NoError(t, err)
		assert.Equal(t, line[:tc.want], string(p), "size %d", tc.size)
	}
	// cryptsetup 2.6.1: a line shorter than -l is "Cannot read requested amount of data.",
	// and a line longer than 8 MiB without -l is "Maximum keyfile size exceeded." (it was
	// cut silently to 8 MiB, so the volume's key was not what was piped).
	_, err := ReadKeyLine(strings.NewReader(line+"\nnext\n"), KeySource{Size: 30000})
	assert.ErrorIs(t, err, luks.ErrKeyFileShort)
	big := strings.Repeat("x", luks.MaxKeyFileSize+1)
	_, err = ReadKeyLine(strings.NewReader(big), KeySource{})
	assert.ErrorIs(t, err, luks.ErrKeyFileTooLarge)
	p, err := ReadKeyLine(strings.NewReader(big[:luks.MaxKeyFileSize]+"\nnext\n"), KeySource{})
	require.NoError(t, err, "exactly 8 MiB and its newline")
	assert.Len(t, p, luks.MaxKeyFileSize)
}

func TestConfirm(t *testing.T) {
	const shown = "\nWARNING!\n========\nThis will overwrite data on x irrevocably.\n\nAre you sure? (Type 'yes' in capital letters): "
	for _, tc := range []struct {
		in   string
		want error
		rest string
	}{
		{"YES\nmore", nil, "more"},
		{"yes\n", ErrAborted, ""},
		{"YES", ErrAborted, ""}, // no newline: cryptsetup compares "YES\n"
		{"", ErrAborted, ""},
		{"YESS\nmore", ErrAborted, "more"},
	} {
		var out strings.Builder
		r := bufio.NewReader(strings.NewReader(tc.in))
		err := Confirm(&out, r, "This will overwrite data on x irrevocably.")
		assert.Equal(t, tc.want, err, "%q", tc.in)
		assert.Equal(t, shown, out.String())
		rest, _ := io.ReadAll(r)
		assert.Equal(t, tc.rest, string(rest), "what follows the answer stays unread")
	}
}

// oneByte counts the Read calls and fails a read of more than one byte, to prove that
// ReadLine on a plain io.Reader never reads past the line.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) != 1 {
		return 0, errors.New("read of more than one byte")
	}
	return o.r.Read(p)
}

func TestReadLine(t *testing.T) {
	src := strings.NewReader("first\nsecond")
	l, err := ReadLine(oneByte{src}, 100)
	require.NoError(t, err)
	assert.Equal(t, "first", string(l))
	l, err = ReadLine(oneByte{src}, 100)
	require.NoError(t, err)
	assert.Equal(t, "second", string(l))
	_, err = ReadLine(oneByte{src}, 100)
	assert.ErrorIs(t, err, ErrNothingToRead)
	_, err = ReadLine(strings.NewReader("toolong\n"), 3)
	assert.Error(t, err)
}

func TestAppendSecretWipesOldArrays(t *testing.T) {
	var buf []byte
	var old []byte
	for i := range 200 {
		if len(buf) == cap(buf) && buf != nil {
			old = buf[:cap(buf)]
		}
		buf = AppendSecret(buf, byte('a'+i%26))
	}
	require.NotNil(t, old)
	assert.Equal(t, make([]byte, len(old)), old, "the grown-out array is zeroed")
	assert.Len(t, buf, 200)
}

// interruptAt answers the first prompt and is interrupted (as by SIGINT) at the second.
type interruptAt struct{ n int }

func (f *interruptAt) IsTerminal() bool { return true }
func (f *interruptAt) ReadPassword(string) ([]byte, error) {
	f.n++
	if f.n == 1 {
		return []byte("first answer"), nil
	}
	return nil, interrupted{ErrTerminalRead, context.Canceled}
}

// TestVerifyInterrupted: Ctrl-C at "Verify passphrase:" is the interruption (cryptsetup:
// "Error reading passphrase from terminal.", exit 1), not "Passphrases do not match." (exit 2).
func TestVerifyInterrupted(t *testing.T) {
	p, err := KeyInput{Term: &interruptAt{}}.Read("Enter passphrase: ", KeySource{}, true)
	assert.Nil(t, p)
	assert.ErrorIs(t, err, ErrTerminalRead)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrPassphraseMismatch)
}

// TestConfirmContextEndsOnSignal: the YES question gives up when the signal context is done,
// with ErrAborted ("Operation aborted.").
func TestConfirmContextEndsOnSignal(t *testing.T) {
	r, w := io.Pipe() // nobody answers
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- ConfirmContext(ctx, &out, r, "This will overwrite data on x irrevocably.") }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrAborted)
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("ConfirmContext did not end on cancel")
	}
	_, err := ReadLineContext(ctx, r, 10)
	assert.ErrorIs(t, err, context.Canceled)
}
