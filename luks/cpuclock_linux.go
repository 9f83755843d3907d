package luks

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPUTime is the CPU time of the calling OS thread. cryptsetup times its PBKDF2
// benchmark with getrusage CPU time, not wall time, so a loaded machine does not talk it
// into weaker key slots; measuring the thread (locked by the caller) does the same here.
func threadCPUTime() (time.Duration, bool) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

func lockThread()   { runtime.LockOSThread() }
func unlockThread() { runtime.UnlockOSThread() }
