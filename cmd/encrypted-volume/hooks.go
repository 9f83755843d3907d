package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// hookPath is the PATH hooks get; nothing else of this process's environment is passed on.
const hookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var errHookSyntax = errors.New("hook syntax")

// parseHooksFile reads one command per line: '#' at the start of a line (after blanks) makes
// it a comment, blank lines are skipped, every other line is split by splitWords.
func parseHooksFile(data string) ([][]string, error) {
	var cmds [][]string
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		words, err := splitWords(t)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
	}
	return cmds, nil
}

// splitWords splits a command line into words the way a shell does for plain words and
// quotes, without any expansion: blanks separate words, '…' keeps everything literally,
// "…" keeps everything but lets a backslash escape " and \, and a backslash outside quotes
// escapes the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%w: trailing backslash", errHookSyntax)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote", errHookSyntax)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: unterminated double quote", errHookSyntax)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// childEnv is the whole environment of a child process: a fixed PATH plus the given
// non-secret variables. Nothing is inherited, so a secret in this process's environment
// cannot reach a child.
func childEnv(extra ...string) []string {
	return append([]string{"PATH=" + hookPath}, extra...)
}

// runChild runs argv with a clean environment, /dev/null as standard input and the given
// output streams. argv never contains a secret; the callers only pass paths and options.
func runChild(ctx context.Context, argv []string, env []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return fmt.Errorf("%w: empty command", errHookSyntax)
	}
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		p, err := lookPathIn(prog, hookPath)
		if err != nil {
			return err
		}
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = env
	cmd.Stdin = nil // os/exec connects nil to the null device
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// lookPathIn finds prog in the directories of path, and also in this process's PATH so the
// tools the operator can run are found even when they live elsewhere. Relative entries
// ("", ".", "bin") are skipped: they name whatever directory the program was started in,
// and a hook must never run a program planted there (os/exec refuses them for the same
// reason, exec.ErrDot).
func lookPathIn(prog, path string) (string, error) {
	for _, list := range []string{path, os.Getenv("PATH")} {
		for _, dir := range strings.Split(list, ":") {
			if !strings.HasPrefix(dir, "/") {
				continue
			}
			p := dir + "/" + prog
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: %w", prog, exec.ErrNotFound)
}

// runHooks runs each command in order and stops at the first failure.
func runHooks(ctx context.Context, hooks [][]string, env []string, stdout, stderr io.Writer) error {
	for i, h := range hooks {
		fmt.Fprintf(stdout, "    hook %d/%d: %s\n", i+1, len(hooks), strings.Join(h, " "))
		if err := runChild(ctx, h, env, stdout, stderr); err != nil {
			return fmt.Errorf("hook %d: %w", i+1, err)
		}
	}
	return nil
}
