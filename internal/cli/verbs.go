package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Verb is one action of a program. R is the program's own run function type, so each
// program keeps its signature and the table stays one literal.
type Verb[R any] struct {
	Name    string
	Aliases []string
	Args    string // synopsis after the name: "<device> [<new key file>]"
	MinArgs int    // positional arguments the verb needs
	Summary string // one line, shown in the verb list and in the verb's help
	Example string // one command line, without the program name
	Run     R
}

// Verbs is a program's verb table, in the order its help lists them.
type Verbs[R any] []Verb[R]

// Lookup finds a verb by name or alias.
func (vs Verbs[R]) Lookup(name string) (Verb[R], bool) {
	for _, v := range vs {
		if v.Name == name || slices.Contains(v.Aliases, name) {
			return v, true
		}
	}
	return Verb[R]{}, false
}

// Synopsis is "NAME ARGS".
func (v Verb[R]) Synopsis() string {
	return strings.TrimSpace(v.Name + " " + v.Args)
}

// WriteHelp writes the help of one verb, the text of "PROGRAM help VERB" and "PROGRAM VERB
// --help":
//
//	Usage: PROGRAM NAME ARGS
//	Aliases: ALIAS...
//
//	SUMMARY
//
//	Example:
//	  PROGRAM EXAMPLE
func (v Verb[R]) WriteHelp(w io.Writer, program string) {
	fmt.Fprintf(w, "Usage: %s %s\n", program, v.Synopsis())
	if len(v.Aliases) > 0 {
		fmt.Fprintf(w, "Aliases: %s\n", strings.Join(v.Aliases, ", "))
	}
	fmt.Fprintf(w, "\n%s\n", v.Summary)
	if v.Example != "" {
		fmt.Fprintf(w, "\nExample:\n  %s %s\n", program, v.Example)
	}
}

// WriteList writes one line per verb, "  NAME  SUMMARY", names padded to one column.
func (vs Verbs[R]) WriteList(w io.Writer) {
	width := 0
	for _, v := range vs {
		width = max(width, len(v.Name))
	}
	for _, v := range vs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, v.Name, v.Summary)
	}
}

// Help answers "PROGRAM help [VERB]": args are the arguments after "help". With a known verb
// it writes that verb's help to stdout and returns ExitOK; with none it calls usage(stdout)
// and returns ExitOK; with an unknown verb it writes "PROGRAM: unknown verb "X"" and the
// usage to stderr and returns ExitUsage.
func (vs Verbs[R]) Help(stdout, stderr io.Writer, program string, args []string, usage func(io.Writer)) int {
	if len(args) == 0 {
		usage(stdout)
		return ExitOK
	}
	v, ok := vs.Lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown verb %q\n", program, args[0])
		usage(stderr)
		return ExitUsage
	}
	v.WriteHelp(stdout, program)
	return ExitOK
}

// IsHelpFlag reports whether arg asks for help: -h, -help, --help (and -? as popt spells it).
func IsHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "-?":
		return true
	}
	return false
}
