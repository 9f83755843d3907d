package grubconf

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/* from the current output")

// golden compares got with testdata/golden/name (rewriting it under -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "missing golden file; run go test ./grubconf -run %s -update", t.Name())
	require.Equal(t, string(want), string(got), "golden %s differs", p)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// fixtureNames lists every copied sample.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir("testdata")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if !e.IsDir() && e.Name() != "README.md" {
			out = append(out, e.Name())
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestEveryFixtureRoundTrips runs every parser over every sample: render(parse(x)) == x.
func TestEveryFixtureRoundTrips(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			b := fixture(t, name)
			require.Equal(t, b, parseLegacy(b).Bytes())
			require.Equal(t, b, parseShell(b).Bytes())
			require.Equal(t, b, parseBLS(b).Bytes())
			require.Equal(t, b, parseGrubenv(b).Bytes())
			require.Equal(t, b, parseCrypttab(b).Bytes())
			require.Equal(t, b, parseFstab(b).Bytes())
		})
	}
}
