package luks

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// availableMemoryKiB is what an allocation of the argon2 memory cost can still get, in KiB:
// the least of MemAvailable, the address space left under RLIMIT_AS and the room left under
// every cgroup v2 memory.max on the way to the root. x/crypto/argon2 allocates the whole cost
// in one slice and the Go runtime aborts the process (not an error) when that fails, so the
// cost is compared before the call. ok is false when nothing could be read.
func availableMemoryKiB() (kib uint64, ok bool) {
	kib = ^uint64(0)
	take := func(v uint64) {
		if v < kib {
			kib = v
		}
		ok = true
	}
	if v, found := procField("/proc/meminfo", "MemAvailable:"); found {
		take(v)
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil && rl.Cur != ^uint64(0) {
		used, _ := procField("/proc/self/status", "VmSize:")
		if lim := rl.Cur / 1024; lim > used {
			take(lim - used)
		} else {
			take(0)
		}
	}
	if v, found := cgroupRoomKiB(); found {
		take(v)
	}
	return kib, ok
}

// procField reads a "Name:   123 kB" line of a /proc file, in KiB.
func procField(file, name string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cgroupRoomKiB: the smallest memory.max − memory.current of the process's cgroup v2 and
// its ancestors (a limit set on a parent binds its children too).
func cgroupRoomKiB() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var rel string
	for _, line := range strings.Split(string(b), "\n") {
		if p, found := strings.CutPrefix(line, "0::"); found {
			rel = p
		}
	}
	if rel == "" {
		return 0, false
	}
	room, found := ^uint64(0), false
	for dir := path.Clean("/" + rel); ; dir = path.Dir(dir) {
		base := "/sys/fs/cgroup" + dir
		max, err1 := os.ReadFile(base + "/memory.max")
		cur, err2 := os.ReadFile(base + "/memory.current")
		if err1 == nil && err2 == nil {
			m, e1 := strconv.ParseUint(strings.TrimSpace(string(max)), 10, 64)
			c, e2 := strconv.ParseUint(strings.TrimSpace(string(cur)), 10, 64)
			if e1 == nil && e2 == nil { // "max" means no limit at this level
				r := uint64(0)
				if m > c {
					r = (m - c) / 1024
				}
				if r < room {
					room = r
				}
				found = true
			}
		}
		if dir == "/" {
			break
		}
	}
	return room, found
}
