//go:build !linux

package dmcrypt

import (
	"testing"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }
