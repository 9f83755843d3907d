package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// newFlags returns a verb's flag set, erroring instead of exiting, with the global output
// options repeated so that they work after the verb too ("list -o json").
func newFlags(name string, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet("ec2volume "+name, flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	fs.StringVar(&g.output, "o", g.output, "output format: text or json")
	fs.StringVar(&g.output, "output", g.output, "output format: text or json")
	fs.BoolVar(&g.verbose, "v", g.verbose, "report every state change on stderr")
	return fs
}

// parse parses flags that may come before, between or after positional arguments
// ("attach vol-1 --device /dev/sdf"), as the EC2 API tools accept them, and checks the
// number of positional arguments (-1: any number).
func parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if positional >= 0 && len(pos) != positional {
		return nil, fmt.Errorf("%w: want %d argument(s), got %d %q", errUsage, positional, len(pos), pos)
	}
	return pos, nil
}

// tagFlag collects repeated --tag key=value options.
type tagFlag map[string]string

func (t tagFlag) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + t[k])
	}
	return b.String()
}

func (t tagFlag) Set(s string) error {
	k, v, _ := strings.Cut(s, "=")
	if k == "" {
		return fmt.Errorf("tag %q: want key=value", s)
	}
	t[k] = v
	return nil
}
