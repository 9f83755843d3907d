package main

import (
	"os"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func testMain(m *testing.M) { os.Exit(m.Run()) }

func lookTool(t *testing.T, name, hint string) string {
	t.Helper()
	return testenv.LookPath(t, name, hint)
}
