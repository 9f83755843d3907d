package vmtest

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// The guest has no modprobe and no modules.dep (the Debian package ships none; depmod runs at
// install time), so the kernel cannot load anything by itself: the harness computes the load
// order on the host from each module's .modinfo section and the guest loads the files in that
// order with finit_module(2).

// defaultModules are loaded into every guest: block devices, device-mapper, dm-crypt and the
// crypto modules behind the cipher specs the project supports. Names use the kernel's spelling
// with '-' and '_' interchangeable. Accelerated variants are in optionalModules.
func defaultModules() []string {
	return []string{
		"loop", "dm_mod", "dm_crypt",
		"ecb", "xts", "lrw", "authenc", "essiv", "cryptd", "crypto_simd",
		"twofish_common", "twofish_generic", "serpent_generic", "sha512_generic", "wp512",
		"af_alg", "algif_skcipher", "algif_hash",
		"virtio_pci", "virtio_blk", "virtio_net",
	}
}

// optionalModules are loaded when the kernel ships them; the guest tolerates ENODEV from them
// (the emulated CPU may lack AVX and friends).
func optionalModules() []string {
	return []string{
		"aesni_intel",
		"twofish_x86_64", "twofish_x86_64_3way", "twofish_avx_x86_64",
		"serpent_sse2_x86_64", "serpent_avx_x86_64", "serpent_avx2",
		"sha512_ssse3",
	}
}

// errModule is wrapped by module resolution failures.
var errModule = errors.New("kernel module")

// modName normalises a module name: the kernel treats '-' and '_' alike.
func modName(s string) string { return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_") }

// modInfo is what the resolver needs from a module's .modinfo.
type modInfo struct {
	Name     string
	Depends  []string // hard dependencies (must be loaded before)
	SoftPre  []string // softdep "pre:" (loaded before when available)
	SoftPost []string // softdep "post:" (loaded after when available)
}

// parseModinfo parses the NUL-separated key=value strings of a .modinfo section.
func parseModinfo(b []byte) modInfo {
	var mi modInfo
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			mi.Name = modName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, modName(d))
				}
			}
		case "softdep":
			// "pre: a b post: c" (either part optional, several softdep lines possible).
			var dst *[]string
			for _, w := range strings.Fields(v) {
				switch w {
				case "pre:":
					dst = &mi.SoftPre
				case "post:":
					dst = &mi.SoftPost
				default:
					if dst != nil {
						*dst = append(*dst, modName(w))
					}
				}
			}
		}
	}
	return mi
}

// readModinfo reads the .modinfo section of a .ko file.
func readModinfo(path string) (modInfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return modInfo{}, fmt.Errorf("%w: %s: %v", errModule, path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return modInfo{}, fmt.Errorf("%w: %s: no .modinfo section", errModule, path)
	}
	b, err := s.Data()
	if err != nil {
		return modInfo{}, fmt.Errorf("%w: %s: %v", errModule, path, err)
	}
	mi := parseModinfo(b)
	if mi.Name == "" {
		mi.Name = modName(filepath.Base(path))
	}
	return mi, nil
}

// moduleIndex maps normalised module names to .ko paths below dir (lib/modules/<ver>/kernel).
func moduleIndex(dir string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx[modName(filepath.Base(p))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: indexing %s: %v", errModule, dir, err)
	}
	return idx, nil
}

// loadOrder returns the modules to load, dependencies first: for each wanted module its softdep
// "pre" modules, its hard dependencies (recursively), itself, then its softdep "post" modules.
// required names must exist; optional names and soft dependencies are skipped when absent.
// info reads a module's metadata given its path (readModinfo outside tests).
func loadOrder(idx map[string]string, required, optional []string, info func(path string) (modInfo, error)) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 = visiting, 2 = done
	cache := map[string]modInfo{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("%w: dependency cycle %s → %s", errModule, strings.Join(chain, " → "), name)
		}
		p, ok := idx[name]
		if !ok {
			return fmt.Errorf("%w: %s not found (needed by %s)", errModule, name, strings.Join(chain, " → "))
		}
		mi, ok := cache[name]
		if !ok {
			var err error
			if mi, err = info(p); err != nil {
				return err
			}
			cache[name] = mi
		}
		state[name] = 1
		chain = append(chain, name)
		for _, d := range mi.SoftPre {
			// Soft dependencies are hints: absent ones and loops through them are skipped.
			if _, ok := idx[d]; ok && state[d] != 1 {
				if err := visit(d, chain); err != nil {
					return err
				}
			}
		}
		for _, d := range mi.Depends {
			if err := visit(d, chain); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		for _, d := range mi.SoftPost {
			if _, ok := idx[d]; ok && state[d] == 0 {
				if err := visit(d, chain); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range required {
		if err := visit(modName(n), []string{"(requested)"}); err != nil {
			return nil, err
		}
	}
	opt := append([]string(nil), optional...)
	sort.Strings(opt) // deterministic archives whatever order callers list them in
	for _, n := range opt {
		if _, ok := idx[modName(n)]; !ok {
			continue
		}
		if err := visit(modName(n), []string{"(optional)"}); err != nil {
			return nil, err
		}
	}
	return order, nil
}
