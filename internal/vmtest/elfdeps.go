package vmtest

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The guest has no package manager and no ld.so.cache: a host program runs there only if its
// ELF interpreter and every shared library it needs (transitively) sit in the initramfs at a
// path the dynamic loader searches. Libraries are resolved the way ld.so does without a cache:
// DT_RPATH/DT_RUNPATH first, then the system directories below, which are also the loader's
// built-in search path on Debian, so placing each library at the path it was found on the host
// makes it findable in the guest.

// systemLibDirs is the cache-less search path of Debian's x86-64 loader.
func systemLibDirs() []string {
	return []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
}

// errNotELF marks files (shell scripts, data) whose dependencies cannot be read.
var errNotELF = errors.New("not an ELF file")

// elfNeeds returns the ELF interpreter (PT_INTERP, "" when static), the DT_NEEDED names and the
// RPATH/RUNPATH directories ($ORIGIN expanded) of the file at path.
func elfNeeds(path string) (interp string, needed, rpath []string, err error) {
	raw, err := os.Open(path)
	if err != nil {
		return "", nil, nil, err
	}
	defer raw.Close()
	var magic [4]byte
	if _, err := raw.ReadAt(magic[:], 0); err != nil || string(magic[:]) != elf.ELFMAG {
		return "", nil, nil, fmt.Errorf("%s: %w", path, errNotELF)
	}
	f, err := elf.NewFile(raw)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, nil, fmt.Errorf("%s: PT_INTERP: %w", path, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if f.Section(".dynamic") == nil {
		return interp, nil, nil, nil
	}
	if needed, err = f.ImportedLibraries(); err != nil {
		return "", nil, nil, fmt.Errorf("%s: DT_NEEDED: %w", path, err)
	}
	for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
		vals, err := f.DynString(tag)
		if err != nil {
			return "", nil, nil, fmt.Errorf("%s: %v: %w", path, tag, err)
		}
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(d, "${ORIGIN}", filepath.Dir(path))
				d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(path))
				if d != "" {
					rpath = append(rpath, d)
				}
			}
		}
	}
	return interp, needed, rpath, nil
}

// sharedLibs returns the sorted host paths of everything the programs need at run time: ELF
// interpreters and the transitive closure of their shared libraries. Non-ELF programs
// (scripts) contribute nothing. dirs is the system search path (systemLibDirs outside tests).
func sharedLibs(programs []string, dirs []string) ([]string, error) {
	found := map[string]bool{}
	var walk func(path string) error
	walk = func(path string) error {
		interp, needed, rpath, err := elfNeeds(path)
		if errors.Is(err, errNotELF) {
			return nil
		}
		if err != nil {
			return err
		}
		if interp != "" && !found[interp] {
			if _, err := os.Stat(interp); err != nil {
				return fmt.Errorf("%s: interpreter: %w", path, err)
			}
			found[interp] = true
		}
		search := append(append([]string(nil), rpath...), dirs...)
	next:
		for _, lib := range needed {
			for _, d := range search {
				p := filepath.Join(d, lib)
				if strings.Contains(lib, "/") {
					p = lib
				}
				if found[p] {
					continue next
				}
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					found[p] = true
					if err := walk(p); err != nil {
						return err
					}
					continue next
				}
			}
			return fmt.Errorf("%s: shared library %s not found in %s", path, lib, strings.Join(search, ":"))
		}
		return nil
	}
	for _, p := range programs {
		if err := walk(p); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(found))
	for p := range found {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// isStatic reports whether the ELF file at path needs neither an interpreter nor libraries,
// i.e. whether it can run as the guest's init as it is.
func isStatic(path string) bool {
	interp, needed, _, err := elfNeeds(path)
	return err == nil && interp == "" && len(needed) == 0
}
