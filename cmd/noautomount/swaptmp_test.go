package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/grubconf"
	"github.com/stretchr/testify/require"
)

// TestLeavesScratchEnabled: swap and /tmp keyed from /dev/urandom must come up at every
// boot; noautomount, with or without --volume and on --undo, leaves their crypttab and
// fstab lines exactly as they are and does not refuse because of them.
func TestLeavesScratchEnabled(t *testing.T) {
	for _, withVolume := range []bool{false, true} {
		root := writeTree(t, map[string]string{
			"etc/default/grub": fixture(t, "07-amazon-linux-2-etc-default-grub"),
			"etc/os-release":   "NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\n",
			"etc/crypttab":     "my_enc_fs /dev/xvdf none luks\n",
			"etc/fstab":        "LABEL=/ / xfs defaults 0 0\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults,nofail 0 2\n",
		})
		sys, err := grubconf.Detect(root)
		require.NoError(t, err)
		var want []string
		for _, sc := range []grubconf.Scratch{
			{Name: "cryptswap", Kind: grubconf.ScratchSwap, Device: "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9"},
			{Name: "crypttmp", Kind: grubconf.ScratchTmp, Device: "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"},
		} {
			p, err := sys.PlanScratch(sc)
			require.NoError(t, err)
			require.NoError(t, p.Apply(grubconf.ApplyOptions{}))
			c, f, err := sys.ScratchLines(sc)
			require.NoError(t, err)
			want = append(want, c, f)
		}
		args := []string{"--root", root}
		if withVolume {
			args = append(args, "--volume", "my_enc_fs")
		}
		for _, extra := range [][]string{nil, {"--undo"}} {
			r := runCLI(t, append(append([]string{}, args...), extra...)...)
			require.Equal(t, 0, r.code, r.stderr)
			require.NotContains(t, r.stderr, "cryptswap")
			require.NotContains(t, r.stderr, "crypttmp")
			ct, err := os.ReadFile(filepath.Join(root, "etc/crypttab"))
			require.NoError(t, err)
			fs, err := os.ReadFile(filepath.Join(root, "etc/fstab"))
			require.NoError(t, err)
			for _, l := range want {
				require.True(t, strings.Contains(string(ct)+string(fs), "\n"+l+"\n"), "%v %v: %q changed:\n%s%s", args, extra, l, ct, fs)
			}
		}
	}
}
