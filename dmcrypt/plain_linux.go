//go:build linux

package dmcrypt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/luks"
)

// OpenPlain maps device (a block device or an image file) as /dev/mapper/NAME in plain
// dm-crypt mode with a key derived from passphrase by p.Hash, like
// `cryptsetup open --type plain DEVICE NAME` 2.6.1 reading the passphrase from a terminal or
// stdin. Plain mode cannot tell a wrong passphrase: the mapping then simply shows garbage.
// Every parameter is checked, and the key derived, before anything is created; on any error
// nothing is left behind. The caller owns passphrase; the derived key is wiped.
func OpenPlain(ctx context.Context, device, name string, passphrase []byte, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := checkPlainOptions(name, opts); err != nil {
		return nil, err
	}
	lp := p.Luks().WithDefaults()
	if _, err := lp.Spec(); err != nil {
		return nil, plainParamErr("plain", name, err)
	}
	vk, err := luks.PlainKey(lp.Hash, passphrase, lp.KeySize)
	if err != nil {
		return nil, plainParamErr("plain", name, err)
	}
	defer vk.Wipe()
	return openPlain(ctx, device, name, dm.PlainUUID(name), vk.Bytes(), p, opts)
}

// OpenPlainKey is OpenPlain with the key itself, exactly p.KeySize bytes, not hashed: what
// cryptsetup does with a key file (`-d FILE`, read raw with --keyfile-offset; see
// luks.ReadKeyFile) and with --volume-key-file. p.Hash must be empty. The caller owns key.
func OpenPlainKey(ctx context.Context, device, name string, key []byte, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := checkPlainOptions(name, opts); err != nil {
		return nil, err
	}
	if p.Hash != "" {
		return nil, fmt.Errorf("plain %s: %w: a raw key is not hashed (Hash %q)", name, ErrInvalidParameter, p.Hash)
	}
	lp := p.Luks().WithDefaults()
	if _, err := lp.Spec(); err != nil {
		return nil, plainParamErr("plain", name, err)
	}
	if len(key) != lp.KeySize {
		return nil, fmt.Errorf("plain %s: %w: key of %d bytes, key size is %d", name, ErrInvalidParameter, len(key), lp.KeySize)
	}
	return openPlain(ctx, device, name, dm.PlainUUID(name), key, p, opts)
}

// OpenEphemeral maps device in plain mode with a fresh key of p.KeySize bytes from the
// kernel's getrandom(2): the building block for swap and /tmp. The key is never returned, written or
// logged; it goes to the kernel in a table loaded with DM_SECURE_DATA_FLAG (or, with
// opts.Keyring, through a logon key dropped right after the load), every buffer that held
// it is zeroed, and it is gone once the mapping is closed — whatever was written through
// the mapping can never be decrypted again. p.Hash must be empty. The mapping's uuid is
// "CRYPT-PLAIN-EPHEMERAL-<name>" (still type PLAIN to cryptsetup and systemd), which
// MappingStatus.Ephemeral recognises.
func OpenEphemeral(ctx context.Context, device, name string, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := checkPlainOptions(name, opts); err != nil {
		return nil, err
	}
	if p.Hash != "" {
		return nil, fmt.Errorf("ephemeral %s: %w: there is no passphrase to hash (Hash %q)", name, ErrInvalidParameter, p.Hash)
	}
	lp := p.Luks().WithDefaults()
	if _, err := lp.Spec(); err != nil {
		return nil, plainParamErr("ephemeral", name, err)
	}
	key := make([]byte, lp.KeySize)
	defer clear(key)
	// luks.ReadSecret, not crypto/rand: getrandom(2) writes into key alone, where crypto/rand's
	// vDSO path can leave key bytes on a stack or in a signal frame.
	if err := luks.ReadSecret(key); err != nil {
		return nil, fmt.Errorf("ephemeral %s: random key: %w", name, err)
	}
	return openPlain(ctx, device, name, dm.EphemeralUUID(name), key, p, opts)
}

// checkPlainOptions refuses a bad name and the LUKS-only options, which a plain mapping
// would otherwise silently ignore (cryptsetup: "Detached metadata device is not supported
// for this crypt type.").
func checkPlainOptions(name string, opts OpenOptions) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if opts.Header != "" || opts.Keyslot != nil || opts.MaxIterations != 0 {
		return fmt.Errorf("plain %s: %w: Header, Keyslot and MaxIterations apply to LUKS only", name, ErrInvalidParameter)
	}
	return nil
}

// plainParamErr names the mapping in a parameter error from the luks package and makes
// luks.ErrInvalidParameter also match this package's ErrInvalidParameter.
func plainParamErr(what, name string, err error) error {
	if errors.Is(err, luks.ErrInvalidParameter) {
		return fmt.Errorf("%s %s: %w (%w)", what, name, err, ErrInvalidParameter)
	}
	return fmt.Errorf("%s %s: %w", what, name, err)
}

// openPlain maps device with key (validated by the caller) under name and uuid, following
// cryptsetup's PLAIN_activate / create_or_reload_device: the size defaults to the device
// minus the offset, an offset or size past the end is refused, the device must not be in
// use unless Shared, a read-only device gives a read-only mapping.
func openPlain(ctx context.Context, device, name, uuid string, key []byte, p PlainParams, opts OpenOptions) (m *Mapping, err error) {
	lp := p.Luks().WithDefaults()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return nil, deviceErr(device, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK, unix.S_IFREG:
	default:
		return nil, fmt.Errorf("device %s: %w: not a block device or regular file", device, ErrNoDevice)
	}
	c, err := openFree(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	m = &Mapping{Name: name, Path: dm.MapperDir + "/" + name, UUID: uuid, Keyslot: -1, ReadOnly: opts.ReadOnly}
	devPath := device
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		if abs, err := filepath.Abs(device); err == nil {
			devPath = abs
		}
		if !p.Shared {
			if err := checkExclusive(devPath); err != nil {
				return nil, err
			}
		}
		if ro, err := blockReadOnly(devPath); err != nil {
			return nil, err
		} else if ro {
			m.ReadOnly = true
		}
	} else {
		lo, err := loop.Attach(device, loop.Options{ReadOnly: opts.ReadOnly, Autoclear: true})
		if err != nil {
			return nil, err
		}
		defer lo.Close() // the table holds the loop from the load on; autoclear does the rest
		devPath = lo.Path
		m.BackingFile = lo.BackingFile
		if lo.ReadOnly {
			m.ReadOnly = true
		}
	}
	m.Device = devPath

	length, err := plainLength(devPath, lp)
	if err != nil {
		return nil, err
	}
	table := &dm.CryptTable{
		Length: length, Cipher: lp.Cipher, Key: key,
		IVOffset: lp.Skip, Device: devPath, Offset: lp.Offset,
		AllowDiscards: opts.AllowDiscards, SameCPUCrypt: opts.SameCPUCrypt,
		SubmitFromCryptCPUs: opts.SubmitFromCryptCPUs,
		NoReadWorkqueue:     opts.NoReadWorkqueue, NoWriteWorkqueue: opts.NoWriteWorkqueue,
		IVLargeSectors: lp.IVLargeSectors, SectorSize: lp.SectorSize,
	}
	if table.SectorSize == luks.SectorSize {
		table.SectorSize = 0
	}
	if opts.Keyring {
		table.Key = nil
		table.Keyring = &dm.KeyringKey{Type: "logon", Description: dm.KeyDescription(uuid), Size: len(key)}
	}
	tgt, err := table.Target()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer clear(tgt.Params)

	info, err := c.Create(name, uuid)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), dm.DefaultRemoveTimeout)
			defer cancel()
			_ = c.Remove(rctx, name, dm.RemoveOptions{})
			removeNode(name, info.Major, info.Minor)
		}
	}()
	load := func() error {
		return c.Load(name, []dm.Target{tgt}, dm.LoadOptions{ReadOnly: m.ReadOnly, Secure: table.HasKeyMaterial()})
	}
	if opts.Keyring {
		err = dm.WithThreadKey(table.Keyring.Description, key, load)
	} else {
		err = load()
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			// dm-crypt's "Error allocating crypto tfm": the kernel lacks the cipher.
			err = fmt.Errorf("%w: kernel has no %s: %w", luks.ErrUnsupportedCipher, lp.Cipher, err)
		}
		return nil, err
	}
	if info, err = c.Resume(name); err != nil {
		return nil, err
	}
	m.Major, m.Minor = info.Major, info.Minor
	if err = ensureNode(ctx, name, info.Major, info.Minor); err != nil {
		return nil, err
	}
	return m, nil
}

// plainLength is the mapping length in sectors: p.Size, or the device from p.Offset on,
// with cryptsetup's checks (device_block_adjust, _crypt_format_plain, PLAIN_activate).
func plainLength(dev string, p luks.PlainParams) (uint64, error) {
	sectors, err := deviceSectors(dev)
	if err != nil {
		return 0, err
	}
	if sectors == 0 {
		return 0, fmt.Errorf("device %s: %w: zero size", dev, ErrDeviceTooSmall)
	}
	if p.Offset >= sectors {
		return 0, fmt.Errorf("device %s: %w (%w: offset %d, %d sectors)", dev, ErrOffsetBeyondDevice, ErrDeviceTooSmall, p.Offset, sectors)
	}
	unit := uint64(p.SectorSize / luks.SectorSize)
	if unit > 1 && (sectors-p.Offset)%unit != 0 {
		return 0, fmt.Errorf("device %s: %w (%w: sector size %d)", dev, ErrUnaligned, ErrInvalidParameter, p.SectorSize)
	}
	length := p.Size
	if length == 0 {
		length = sectors - p.Offset
	}
	if sectors-p.Offset < length {
		return 0, fmt.Errorf("device %s: %w: %d sectors from offset %d requested, device has %d", dev, ErrDeviceTooSmall, length, p.Offset, sectors)
	}
	if lbs, err := logicalBlockSize(dev); err == nil && lbs > luks.SectorSize && length%uint64(lbs/luks.SectorSize) != 0 {
		return 0, fmt.Errorf("device %s: %w (%w: %d-byte logical blocks)", dev, ErrUnaligned, ErrInvalidParameter, lbs)
	}
	return length, nil
}

func logicalBlockSize(dev string) (int, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
}

// checkExclusive refuses a block device that is mounted, mapped or otherwise held, as
// cryptsetup does without --shared (an O_EXCL open fails with EBUSY then).
func checkExclusive(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("device %s: %w (%w)", dev, ErrDeviceInUse, ErrBusy)
		}
		return deviceErr(dev, err)
	}
	return unix.Close(fd)
}
