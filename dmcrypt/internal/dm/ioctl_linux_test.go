//go:build linux

package dm

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// The hand-written layout must agree with x/sys's cgo-generated one (an independent source).
func TestLayoutMatchesXSys(t *testing.T) {
	var d unix.DmIoctl
	assert.Equal(t, uintptr(ioctlHeaderSize), unsafe.Sizeof(d))
	assert.Equal(t, uintptr(offDataSize), unsafe.Offsetof(d.Data_size))
	assert.Equal(t, uintptr(offDataStart), unsafe.Offsetof(d.Data_start))
	assert.Equal(t, uintptr(offTargetCount), unsafe.Offsetof(d.Target_count))
	assert.Equal(t, uintptr(offOpenCount), unsafe.Offsetof(d.Open_count))
	assert.Equal(t, uintptr(offFlags), unsafe.Offsetof(d.Flags))
	assert.Equal(t, uintptr(offEventNr), unsafe.Offsetof(d.Event_nr))
	assert.Equal(t, uintptr(offDev), unsafe.Offsetof(d.Dev))
	assert.Equal(t, uintptr(offName), unsafe.Offsetof(d.Name))
	assert.Equal(t, uintptr(offUUID), unsafe.Offsetof(d.Uuid))
	var s unix.DmTargetSpec
	assert.Equal(t, uintptr(targetSpecSize), unsafe.Sizeof(s))
	assert.Equal(t, uintptr(20), unsafe.Offsetof(s.Next))
	assert.Equal(t, uintptr(24), unsafe.Offsetof(s.Target_type))
	var n unix.DmNameList
	assert.Equal(t, uintptr(12), unsafe.Offsetof(n.Name))
	var m unix.DmTargetMsg
	assert.Equal(t, uintptr(8), unsafe.Sizeof(m), "message text follows the u64 sector")

	for nr, want := range map[uint]uint{
		cmdVersion: unix.DM_VERSION, cmdListDevices: unix.DM_LIST_DEVICES, cmdDevCreate: unix.DM_DEV_CREATE,
		cmdDevRemove: unix.DM_DEV_REMOVE, cmdDevSuspend: unix.DM_DEV_SUSPEND, cmdDevStatus: unix.DM_DEV_STATUS,
		cmdTableLoad: unix.DM_TABLE_LOAD, cmdTableStatus: unix.DM_TABLE_STATUS, cmdTargetMsg: unix.DM_TARGET_MSG,
	} {
		assert.Equal(t, want, ioctlNumber(nr))
	}
	for mine, theirs := range map[uint32]uint32{
		flagReadOnly: unix.DM_READONLY_FLAG, flagSuspend: unix.DM_SUSPEND_FLAG, flagStatusTable: unix.DM_STATUS_TABLE_FLAG,
		flagActivePresent: unix.DM_ACTIVE_PRESENT_FLAG, flagInactivePresent: unix.DM_INACTIVE_PRESENT_FLAG,
		flagBufferFull: unix.DM_BUFFER_FULL_FLAG, flagUUID: unix.DM_UUID_FLAG, flagSecureData: unix.DM_SECURE_DATA_FLAG,
		flagDeferredRemove: unix.DM_DEFERRED_REMOVE,
	} {
		assert.Equal(t, theirs, mine)
	}
	assert.Equal(t, uint32(unix.DM_NAME_LIST_FLAG_HAS_UUID), uint32(nameListFlagHasUUID))
	assert.Equal(t, uint32(unix.DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID), uint32(nameListFlagDoesntHaveID))
	maj, min := decodeDev(uint64(unix.Mkdev(254, 3)))
	assert.Equal(t, [2]uint32{254, 3}, [2]uint32{maj, min})
	assert.Equal(t, uint64(unix.Mkdev(259, 70000)), encodeDev(259, 70000))
}
