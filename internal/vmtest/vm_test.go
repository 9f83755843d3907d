package vmtest_test

import (
	"os"
	"testing"

	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

func TestGuestBasics(t *testing.T) {
	if !vmtest.Run(t, vmtest.Options{}) {
		return
	}
	require.Equal(t, 1, os.Getpid())
	_, err := os.Stat("/dev/mapper/control")
	require.NoError(t, err)
}
