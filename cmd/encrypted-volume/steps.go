package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// errSkipped is returned by a step that had nothing to do; its reason is printed instead of
// "done".
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

func skip(format string, args ...any) error { return &skipError{reason: fmt.Sprintf(format, args...)} }

// step is one numbered action of a verb. describe is evaluated when the step starts, so it
// can name things found by earlier steps (the resolved device, for instance).
type step struct {
	describe func() string
	run      func(ctx context.Context) error
}

// stepError says which step failed; the CLI prints it and maps the cause to an exit code.
type stepError struct {
	N, Total int
	What     string
	Err      error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("step %d/%d failed (%s): %v", e.N, e.Total, e.What, e.Err)
}
func (e *stepError) Unwrap() error { return e.Err }

// runSteps runs steps in order, printing "Step i/N: what..." before each, and stops at the
// first failure. The caller's cleanup (deferred) runs after a failure.
func runSteps(ctx context.Context, w io.Writer, steps []step) error {
	for i, s := range steps {
		what := s.describe()
		fmt.Fprintf(w, "Step %d/%d: %s...\n", i+1, len(steps), what)
		if err := ctx.Err(); err != nil {
			return &stepError{N: i + 1, Total: len(steps), What: what, Err: err}
		}
		err := s.run(ctx)
		var sk *skipError
		switch {
		case errors.As(err, &sk):
			fmt.Fprintf(w, "    skipped: %s\n", sk.reason)
		case err != nil:
			return &stepError{N: i + 1, Total: len(steps), What: what, Err: err}
		}
	}
	return nil
}

// fixed returns a describe func for a constant description.
func fixed(s string) func() string { return func() string { return s } }
