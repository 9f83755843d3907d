package ebs

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// NVMe Identify Controller data structure (NVM Express Base Specification, figure
// "Identify Controller Data Structure"): 4096 bytes. EBS puts the volume ID in the serial
// number and the device name requested at attach time in the first 32 bytes of the vendor
// specific area (amazon-ec2-utils ebsnvme-id reads the same bytes).
const (
	IdentifySize      = 4096
	offVendorID       = 0
	offSerial         = 4
	lenSerial         = 20
	offModel          = 24
	lenModel          = 40
	offFirmware       = 64
	lenFirmware       = 8
	offVendorSpecific = 3072
	lenEBSDeviceName  = 32
)

// AmazonVendorID is the PCI vendor ID of EBS NVMe controllers.
const AmazonVendorID = 0x1D0F

// NVMeController is the part of the Identify Controller data the resolver uses.
type NVMeController struct {
	VendorID uint16
	Serial   string // space padding removed
	Model    string
	Firmware string
	// BlockDevice is the name requested at attach time from the vendor area ("/dev/sdf" or
	// "sdf" on EBS), "" when the area is empty (qemu, other vendors).
	BlockDevice string
}

// IsEBS reports whether the controller is an Amazon EBS one.
func (c *NVMeController) IsEBS() bool {
	return c.VendorID == AmazonVendorID && strings.HasPrefix(c.Model, "Amazon Elastic Block Store")
}

// ParseIdentifyController decodes Identify Controller data (at least the first 3104 bytes).
func ParseIdentifyController(b []byte) (*NVMeController, error) {
	if len(b) < offVendorSpecific+lenEBSDeviceName {
		return nil, fmt.Errorf("%w: identify controller data is %d bytes, want %d", ErrInvalidParameter, len(b), IdentifySize)
	}
	return &NVMeController{
		VendorID:    binary.LittleEndian.Uint16(b[offVendorID:]),
		Serial:      field(b[offSerial : offSerial+lenSerial]),
		Model:       field(b[offModel : offModel+lenModel]),
		Firmware:    field(b[offFirmware : offFirmware+lenFirmware]),
		BlockDevice: field(b[offVendorSpecific : offVendorSpecific+lenEBSDeviceName]),
	}, nil
}

// field trims ASCII space and NUL padding; non-printable bytes make the field empty (an
// uninitialised vendor area is not a name).
func field(b []byte) string {
	s := strings.TrimRight(string(b), " \x00")
	s = strings.TrimLeft(s, " ")
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}
