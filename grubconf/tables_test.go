package grubconf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCrypttab(t *testing.T) {
	tests := []struct {
		name, in, want string
		comment        bool
	}{
		{"options added", "my_enc_fs /dev/xvdf none luks\n", "my_enc_fs /dev/xvdf none luks,noauto,nofail\n", false},
		{"tabs and double spaces kept", "# c\nmy_enc_fs\t\tUUID=abc  none\tluks,discard  \n", "# c\nmy_enc_fs\t\tUUID=abc  none\tluks,discard,noauto,nofail  \n", false},
		{"no options field", "my_enc_fs /dev/xvdf none\n", "my_enc_fs /dev/xvdf none noauto,nofail\n", false},
		{"no key field", "my_enc_fs\t/dev/xvdf", "my_enc_fs\t/dev/xvdf\tnone\tnoauto,nofail", false},
		{"one of two present", "my_enc_fs /dev/xvdf - luks,nofail\n", "my_enc_fs /dev/xvdf - luks,nofail,noauto\n", false},
		{"other volumes untouched", "other /dev/xvdg none luks\nmy_enc_fs /dev/xvdf none luks\n", "other /dev/xvdg none luks\nmy_enc_fs /dev/xvdf none luks,noauto,nofail\n", false},
		{"commented line ignored", "#my_enc_fs /dev/xvdf none luks\n", "#my_enc_fs /dev/xvdf none luks\n", false},
		{"sysv: comment out", "swap /dev/sdb2 /dev/urandom swap\nmy_enc_fs /dev/xvdf none\n", "swap /dev/sdb2 /dev/urandom swap\n#my_enc_fs /dev/xvdf none\n", true},
		{"sysv: CRLF", "my_enc_fs /dev/xvdf none\r\n", "#my_enc_fs /dev/xvdf none\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseCrypttab([]byte(tt.in))
			require.Equal(t, tt.in, string(c.Bytes()))
			var changed bool
			if tt.comment {
				changed = c.CommentOut("my_enc_fs")
			} else {
				changed = c.DisableAuto("my_enc_fs")
			}
			assert.Equal(t, tt.in != tt.want, changed)
			assert.Equal(t, tt.want, string(c.Bytes()))
			// Idempotent.
			if tt.comment {
				assert.False(t, c.CommentOut("my_enc_fs"))
				present, _ := c.Active("my_enc_fs")
				assert.False(t, present)
			} else {
				assert.False(t, c.DisableAuto("my_enc_fs"))
				if strings.Contains(tt.in, "\nmy_enc_fs") || strings.HasPrefix(tt.in, "my_enc_fs") {
					_, off := c.Active("my_enc_fs")
					assert.True(t, off)
				}
			}
		})
	}
}

func TestCrypttabFixture(t *testing.T) {
	in := fixture(t, "13-target-crypttab-and-fstab.example")
	c := parseCrypttab(in)
	require.Equal(t, in, c.Bytes())
	present, off := c.Active("securedata")
	assert.True(t, present)
	assert.True(t, off, "the sample is the target state")
	assert.False(t, c.DisableAuto("securedata"))
	f := parseFstab(in)
	present, off = f.Disabled("/dev/mapper/securedata", "/data")
	assert.True(t, present)
	assert.True(t, off)
	assert.False(t, f.DisableAuto("/dev/mapper/securedata", "/data"))
	assert.Equal(t, in, f.Bytes())
}

func TestCrypttabIsLUKS(t *testing.T) {
	assert.True(t, crypttabEntry{Name: "a", Key: "none", Options: "luks"}.IsLUKS())
	assert.True(t, crypttabEntry{Name: "a"}.IsLUKS())
	assert.False(t, crypttabEntry{Name: "s", Key: "/dev/urandom", Options: "swap"}.IsLUKS())
	assert.False(t, crypttabEntry{Name: "p", Key: "/k", Options: "plain,cipher=aes"}.IsLUKS())
}

func TestFstab(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"options and pass", "/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n", "/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults,noauto,nofail 0 0\n"},
		{"by mount point", "UUID=1234\t/encrypted_vol\text4\tdefaults,nofail\t0\t2\n", "UUID=1234\t/encrypted_vol\text4\tdefaults,nofail,noauto\t0\t0\n"},
		{"pass already 0", "/dev/mapper/my_enc_fs  /encrypted_vol  ext4  rw  0 0\n", "/dev/mapper/my_enc_fs  /encrypted_vol  ext4  rw,noauto,nofail  0 0\n"},
		{"no freq/pass", "/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults", "/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults,noauto,nofail"},
		{"no options", "/dev/mapper/my_enc_fs /encrypted_vol ext4\n", "/dev/mapper/my_enc_fs /encrypted_vol ext4 noauto,nofail\n"},
		{"others untouched", "LABEL=/ / ext4 defaults 1 1\n# /dev/mapper/my_enc_fs /x ext4 defaults 0 2\n", "LABEL=/ / ext4 defaults 1 1\n# /dev/mapper/my_enc_fs /x ext4 defaults 0 2\n"},
		{"escaped mount point", "/dev/sdz /mnt/my\\040vol ext4 defaults 0 2\n", "/dev/sdz /mnt/my\\040vol ext4 defaults,noauto,nofail 0 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := "/encrypted_vol"
			if strings.Contains(tt.in, "my\\040vol") {
				mp = "/mnt/my vol"
			}
			f := parseFstab([]byte(tt.in))
			require.Equal(t, tt.in, string(f.Bytes()))
			assert.Equal(t, tt.in != tt.want, f.DisableAuto("/dev/mapper/my_enc_fs", mp))
			assert.Equal(t, tt.want, string(f.Bytes()))
			assert.False(t, f.DisableAuto("/dev/mapper/my_enc_fs", mp), "idempotent")
		})
	}
}

func FuzzCrypttab(f *testing.F) {
	f.Add(fixture(f, "13-target-crypttab-and-fstab.example"))
	f.Add([]byte("my_enc_fs /dev/xvdf none luks\n"))
	f.Add([]byte("my_enc_fs\t/dev/xvdf\r\n#x\n  \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := parseCrypttab(b)
		require.Equal(t, b, c.Bytes())
		_ = c.Entries()
		if c.DisableAuto("my_enc_fs") {
			require.False(t, parseCrypttab(c.Bytes()).DisableAuto("my_enc_fs"), "idempotent on %q", c.Bytes())
		}
		c2 := parseCrypttab(b)
		if c2.CommentOut("my_enc_fs") {
			p, _ := parseCrypttab(c2.Bytes()).Active("my_enc_fs")
			require.False(t, p)
		}
	})
}

func FuzzFstab(f *testing.F) {
	f.Add(fixture(f, "13-target-crypttab-and-fstab.example"))
	f.Add([]byte("/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := parseFstab(b)
		require.Equal(t, b, fs.Bytes())
		_ = fs.Entries()
		if fs.DisableAuto("/dev/mapper/my_enc_fs", "/encrypted_vol") {
			require.False(t, parseFstab(fs.Bytes()).DisableAuto("/dev/mapper/my_enc_fs", "/encrypted_vol"), "idempotent on %q", fs.Bytes())
		}
	})
}
