package vmtest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func TestParseModinfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want modInfo
	}{
		{"xts", "license=GPL\x00softdep=pre: ecb\x00depends=\x00name=xts\x00vermagic=6.1.0\x00",
			modInfo{Name: "xts", SoftPre: []string{"ecb"}}},
		{"dashes become underscores", "depends=twofish-x86_64,twofish_common,crypto_simd\x00name=twofish_avx_x86_64\x00",
			modInfo{Name: "twofish_avx_x86_64", Depends: []string{"twofish_x86_64", "twofish_common", "crypto_simd"}}},
		{"pre and post", "softdep=pre: a b-c post: d\x00softdep=pre: e\x00name=m\x00",
			modInfo{Name: "m", SoftPre: []string{"a", "b_c", "e"}, SoftPost: []string{"d"}}},
		{"garbage", "no equals\x00\x00=\x00softdep=x y\x00", modInfo{}},
		{"empty", "", modInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, parseModinfo([]byte(tc.in)))
		})
	}
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("softdep=pre: ecb post: x\x00depends=a,b\x00name=xts\x00"))
	f.Add([]byte("\x00\x00=="))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi := parseModinfo(b)
		for _, list := range [][]string{mi.Depends, mi.SoftPre, mi.SoftPost} {
			for _, d := range list {
				assert.NotEmpty(t, d)
				assert.NotContains(t, d, "-")
			}
		}
	})
}

// fakeModules is an index and metadata table standing in for a kernel's module directory.
type fakeModules map[string]modInfo

func (f fakeModules) index() map[string]string {
	idx := map[string]string{}
	for n := range f {
		idx[n] = "/m/" + n + ".ko"
	}
	return idx
}

func (f fakeModules) info(p string) (modInfo, error) {
	return f[modName(filepath.Base(p))], nil
}

func TestLoadOrder(t *testing.T) {
	mods := fakeModules{
		"dm_mod":          {},
		"dm_crypt":        {Depends: []string{"dm_mod"}},
		"ecb":             {},
		"xts":             {SoftPre: []string{"ecb", "not_shipped"}},
		"authenc":         {},
		"essiv":           {Depends: []string{"authenc"}},
		"cryptd":          {},
		"crypto_simd":     {Depends: []string{"cryptd"}},
		"aesni_intel":     {Depends: []string{"crypto_simd"}},
		"twofish_common":  {},
		"twofish_x86_64":  {Depends: []string{"twofish_common"}},
		"twofish_avx":     {Depends: []string{"twofish_x86_64", "twofish_common", "crypto_simd"}},
		"with_post":       {SoftPost: []string{"after"}},
		"after":           {},
		"cycle_a":         {Depends: []string{"cycle_b"}},
		"cycle_b":         {Depends: []string{"cycle_a"}},
		"needs_missing":   {Depends: []string{"nowhere"}},
		"post_to_parent":  {Depends: []string{"parent_of_post"}},
		"parent_of_post":  {SoftPost: []string{"post_to_parent"}},
		"softdep_on_self": {SoftPre: []string{"softdep_on_self"}},
	}
	tests := []struct {
		name               string
		required, optional []string
		want               []string
		wantErr            string
	}{
		{"hard dependency first", []string{"dm-crypt"}, nil, []string{"dm_mod", "dm_crypt"}, ""},
		{"softdep pre first, absent softdep ignored", []string{"xts"}, nil, []string{"ecb", "xts"}, ""},
		{"essiv after authenc", []string{"essiv"}, nil, []string{"authenc", "essiv"}, ""},
		{"transitive chain", []string{"aesni-intel"}, nil, []string{"cryptd", "crypto_simd", "aesni_intel"}, ""},
		{"shared dependencies once", []string{"dm_crypt", "dm_mod", "twofish_avx", "aesni_intel"}, nil,
			[]string{"dm_mod", "dm_crypt", "twofish_common", "twofish_x86_64", "cryptd", "crypto_simd", "twofish_avx", "aesni_intel"}, ""},
		{"softdep post after", []string{"with_post"}, nil, []string{"with_post", "after"}, ""},
		{"optional present and absent", []string{"ecb"}, []string{"not_shipped", "essiv"}, []string{"ecb", "authenc", "essiv"}, ""},
		{"post softdep back to the loading parent", []string{"post_to_parent"}, nil, []string{"parent_of_post", "post_to_parent"}, ""},
		{"soft loop ignored", []string{"softdep_on_self"}, nil, []string{"softdep_on_self"}, ""},
		{"cycle", []string{"cycle_a"}, nil, nil, "dependency cycle"},
		{"missing required", []string{"nope"}, nil, nil, "nope not found"},
		{"missing hard dependency", []string{"needs_missing"}, nil, nil, "nowhere not found (needed by (requested) → needs_missing)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadOrder(mods.index(), tc.required, tc.optional, mods.info)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, errModule)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestLoadOrderRealKernel resolves the default module set against the unpacked Debian kernel.
func TestLoadOrderRealKernel(t *testing.T) {
	k, err := findKernel(kernelDir())
	if err != nil {
		testenv.Missing(t, "the Debian cloud kernel", "run internal/vmtest/setup-kernel.sh")
	}
	idx, err := moduleIndex(k.ModDir)
	require.NoError(t, err)
	order, err := loadOrder(idx, defaultModules(), optionalModules(), readModinfo)
	require.NoError(t, err)
	t.Logf("load order: %v", order)
	pos := func(n string) int {
		i := slices.Index(order, n)
		require.GreaterOrEqual(t, i, 0, "%s missing from %v", n, order)
		return i
	}
	for _, before := range [][2]string{
		{"ecb", "xts"}, {"authenc", "essiv"}, {"dm_mod", "dm_crypt"},
		{"cryptd", "crypto_simd"}, {"crypto_simd", "aesni_intel"},
		{"twofish_common", "twofish_generic"}, {"serpent_generic", "serpent_avx2"},
		{"virtio", "virtio_blk"}, {"virtio_ring", "virtio_pci"}, {"af_alg", "algif_skcipher"},
	} {
		assert.Less(t, pos(before[0]), pos(before[1]), "%s must load before %s", before[0], before[1])
	}
	assert.Len(t, order, len(slices.Compact(slices.Sorted(slices.Values(order)))), "no module twice")

	mi, err := readModinfo(idx["xts"])
	require.NoError(t, err)
	assert.Equal(t, modInfo{Name: "xts", SoftPre: []string{"ecb"}}, mi)
}

func TestReadModinfoErrors(t *testing.T) {
	_, err := readModinfo(filepath.Join(t.TempDir(), "missing.ko"))
	assert.ErrorIs(t, err, errModule)
	notELF := filepath.Join(t.TempDir(), "x.ko")
	require.NoError(t, os.WriteFile(notELF, []byte("not an ELF file"), 0o644))
	_, err = readModinfo(notELF)
	assert.ErrorIs(t, err, errModule)
	self, err := os.Executable() // an ELF file without .modinfo
	require.NoError(t, err)
	_, err = readModinfo(self)
	assert.ErrorIs(t, err, errModule)
}
