//go:build !linux

package luks

import "time"

// threadCPUTime is unavailable here; the benchmark falls back to wall time.
func threadCPUTime() (time.Duration, bool) { return 0, false }

func lockThread()   {}
func unlockThread() {}
