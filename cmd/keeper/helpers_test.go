package main

import (
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
)

func agePair(t *testing.T, dir string) ageKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	f := filepath.Join(dir, "identity.txt")
	require.NoError(t, os.WriteFile(f, []byte("# test key\n"+id.String()+"\n"), 0o600))
	return ageKey{recipient: id.Recipient().String(), file: f}
}
