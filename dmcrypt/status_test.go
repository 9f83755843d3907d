package dmcrypt

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
)

func TestStatusDump(t *testing.T) {
	base := MappingStatus{
		Name: "my_enc_fs", Type: "LUKS1", TargetType: "crypt", Cipher: "aes-xts-plain64", KeySize: 64,
		Device: "/dev/loop0", Loop: "/tmp/img", SectorSize: 512, Offset: 4096, Size: 16384,
	}
	for _, tc := range []struct {
		name string
		mod  func(*MappingStatus)
		arg  string
		want string
	}{
		{"image on loop", func(*MappingStatus) {}, "my_enc_fs", `/dev/mapper/my_enc_fs is active.
  type:    LUKS1
  cipher:  aes-xts-plain64
  keysize: 512 bits
  key location: dm-crypt
  device:  /dev/loop0
  loop:    /tmp/img
  sector size:  512
  offset:  4096 sectors
  size:    16384 sectors
  mode:    read/write
`},
		{"busy, readonly, keyring, nvme, flags", func(s *MappingStatus) {
			s.InUse, s.ReadOnly, s.KeyInKeyring, s.Loop, s.Device = true, true, true, "", "/dev/nvme0n1"
			s.Cipher, s.KeySize = "aes-cbc-essiv:sha256", 32
			s.AllowDiscards, s.SameCPUCrypt = true, true
		}, "my_enc_fs", `/dev/mapper/my_enc_fs is active and is in use.
  type:    LUKS1
  cipher:  aes-cbc-essiv:sha256
  keysize: 256 bits
  key location: keyring
  device:  /dev/nvme0n1
  sector size:  512
  offset:  4096 sectors
  size:    16384 sectors
  mode:    readonly
  flags:   discards same_cpu_crypt 
`},
		{"all flags, suspended, skipped, path argument", func(s *MappingStatus) {
			s.Suspended, s.IVOffset, s.SectorSize = true, 7, 4096
			s.AllowDiscards, s.SameCPUCrypt, s.SubmitFromCryptCPUs, s.NoReadWorkqueue, s.NoWriteWorkqueue = true, true, true, true, true
		}, "/dev/mapper/my_enc_fs", `/dev/mapper/my_enc_fs is active.
  type:    LUKS1
  cipher:  aes-xts-plain64
  keysize: 512 bits
  key location: dm-crypt
  device:  /dev/loop0
  loop:    /tmp/img
  sector size:  4096
  offset:  4096 sectors
  size:    16384 sectors
  skipped: 7 sectors
  mode:    read/write (suspended)
  flags:   discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue
`},
		{"not a crypt target", func(s *MappingStatus) { s.Type, s.TargetType = "", "linear" }, "lin", `/dev/mapper/lin is active.
  type:    n/a
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.mod(&s)
			var b strings.Builder
			require.NoError(t, s.Dump(&b, tc.arg))
			assert.Equal(t, tc.want, b.String())
		})
	}
	var b strings.Builder
	require.NoError(t, DumpInactive(&b, "gone"))
	assert.Equal(t, "/dev/mapper/gone is inactive.\n", b.String())
}

func TestStatusFromTable(t *testing.T) {
	ct, err := dm.ParseCryptTarget(dm.Target{Length: 18432, Type: "crypt",
		Params: []byte("aes-xts-plain64 :64:logon:cloudluks:x 3 7:0 4096 3 allow_discards no_write_workqueue sector_size:4096")})
	require.NoError(t, err)
	var s MappingStatus
	s.fillFromTable(ct)
	assert.Equal(t, MappingStatus{TargetType: "crypt", Cipher: "aes-xts-plain64", KeySize: 64, KeyInKeyring: true,
		Device: "7:0", SectorSize: 4096, Offset: 4096, Size: 18432, IVOffset: 3, AllowDiscards: true, NoWriteWorkqueue: true}, s)
	assert.Equal(t, "/dev/mapper/x", (&MappingStatus{Name: "x"}).Path())
}

func ExampleMappingStatus_Dump() {
	s := &MappingStatus{
		Name: "my_enc_fs", Type: "LUKS1", TargetType: "crypt",
		Cipher: "aes-cbc-essiv:sha256", KeySize: 32,
		Device: "/dev/xvdf", SectorSize: 512, Offset: 4096, Size: 20967424,
	}
	_ = s.Dump(os.Stdout, "my_enc_fs")
	// Output:
	// /dev/mapper/my_enc_fs is active.
	//   type:    LUKS1
	//   cipher:  aes-cbc-essiv:sha256
	//   keysize: 256 bits
	//   key location: dm-crypt
	//   device:  /dev/xvdf
	//   sector size:  512
	//   offset:  4096 sectors
	//   size:    20967424 sectors
	//   mode:    read/write
}

func FuzzStatusDump(f *testing.F) {
	f.Add("aes-xts-plain64 00112233 0 7:0 4096 1 allow_discards", "data")
	f.Add("aes-cbc-essiv:sha256 :32:logon:a:b 9 259:0 2056", "/dev/mapper/x")
	f.Fuzz(func(t *testing.T, params, name string) {
		ct, err := dm.ParseCryptTarget(dm.Target{Length: 8, Type: "crypt", Params: []byte(params)})
		if err != nil {
			return
		}
		ct.Wipe()
		var s MappingStatus
		s.fillFromTable(ct)
		var b strings.Builder
		require.NoError(t, s.Dump(&b, name))
		if strings.ContainsAny(name+ct.Device+ct.Cipher, "\n") {
			return // a name or path with a newline spans lines, as it does for cryptsetup
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		assert.GreaterOrEqual(t, len(lines), 10)
		assert.True(t, strings.HasPrefix(lines[1], "  type:    "))
	})
}
