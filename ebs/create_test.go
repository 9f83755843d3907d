package ebs_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
)

func TestCreateOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    ebs.CreateOptions
		ok   bool
		want string // substring of the error
	}{
		{"default type", ebs.CreateOptions{SizeGiB: 10}, true, ""},
		{"seed: standard 10 GiB", ebs.CreateOptions{SizeGiB: 10, Type: "standard"}, true, ""},
		{"gp2", ebs.CreateOptions{SizeGiB: 16384, Type: "gp2"}, true, ""},
		{"gp3 tuned", ebs.CreateOptions{SizeGiB: 100, Type: "gp3", IOPS: 6000, Throughput: 500}, true, ""},
		{"io1", ebs.CreateOptions{SizeGiB: 100, Type: "io1", IOPS: 5000}, true, ""},
		{"io2", ebs.CreateOptions{SizeGiB: 100, Type: "io2", IOPS: 100000}, true, ""},
		{"st1", ebs.CreateOptions{SizeGiB: 125, Type: "st1"}, true, ""},
		{"sc1", ebs.CreateOptions{SizeGiB: 500, Type: "sc1"}, true, ""},
		{"from snapshot, size implied", ebs.CreateOptions{SnapshotID: "snap-1"}, true, ""},
		{"encrypted with key", ebs.CreateOptions{SizeGiB: 1, Encrypted: true, KMSKeyID: "alias/x"}, true, ""},

		{"unknown type", ebs.CreateOptions{SizeGiB: 10, Type: "gp4"}, false, `volume type "gp4"`},
		{"no size", ebs.CreateOptions{}, false, "a size or a snapshot"},
		{"negative size", ebs.CreateOptions{SizeGiB: -1}, false, "size -1"},
		{"standard too big", ebs.CreateOptions{SizeGiB: 2000, Type: "standard"}, false, "1–1024 GiB"},
		{"st1 too small", ebs.CreateOptions{SizeGiB: 10, Type: "st1"}, false, "125–16384 GiB"},
		{"io1 too small", ebs.CreateOptions{SizeGiB: 2, Type: "io1", IOPS: 100}, false, "4–16384 GiB"},
		{"gp2 takes no IOPS", ebs.CreateOptions{SizeGiB: 10, Type: "gp2", IOPS: 3000}, false, "takes no IOPS"},
		{"io2 needs IOPS", ebs.CreateOptions{SizeGiB: 10, Type: "io2"}, false, "requires IOPS"},
		{"gp3 IOPS below floor", ebs.CreateOptions{SizeGiB: 10, Type: "gp3", IOPS: 100}, false, "3000–80000"},
		{"io1 IOPS per GiB", ebs.CreateOptions{SizeGiB: 10, Type: "io1", IOPS: 1000}, false, "50 IOPS per GiB"},
		{"gp3 IOPS per GiB", ebs.CreateOptions{SizeGiB: 10, Type: "gp3", IOPS: 6000}, false, "500 IOPS per GiB"},
		{"st1 takes no throughput", ebs.CreateOptions{SizeGiB: 500, Type: "st1", Throughput: 200}, false, "takes no throughput"},
		{"gp3 throughput range", ebs.CreateOptions{SizeGiB: 10, Type: "gp3", Throughput: 100}, false, "125–2000"},
		{"gp3 throughput per IOPS", ebs.CreateOptions{SizeGiB: 10, Type: "gp3", Throughput: 1000}, false, "0.25 MiB/s per IOPS"},
		{"KMS without encrypted", ebs.CreateOptions{SizeGiB: 1, KMSKeyID: "alias/x"}, false, "needs Encrypted"},
		{"reserved tag", ebs.CreateOptions{SizeGiB: 1, Tags: map[string]string{"aws:x": "y"}}, false, "reserved"},
		{"token tag", ebs.CreateOptions{SizeGiB: 1, Tags: map[string]string{ebs.TokenTagKey: "y"}}, false, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ebs.ErrInvalidParameter)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestClientToken(t *testing.T) {
	tok := ebs.ClientToken("pvc-1234")
	assert.Len(t, tok, 64, "EC2's maximum ClientToken length")
	assert.Equal(t, tok, ebs.ClientToken("pvc-1234"))
	assert.NotEqual(t, tok, ebs.ClientToken("pvc-1235"))
}

func TestErrorMessage(t *testing.T) {
	err := &ebs.Error{Op: "attach", VolumeID: "vol-0abc", InstanceID: "i-0def", Device: "/dev/sdf", State: "attaching", Err: ebs.ErrAttachTimeout}
	assert.Equal(t, "ebs: attach vol-0abc instance i-0def device /dev/sdf (state attaching): attachment timed out", err.Error())
	assert.ErrorIs(t, err, ebs.ErrAttachTimeout)
}

func ExampleClientToken() {
	// The same creation name gives the same token in every process, so a create retried
	// after a crash cannot make a second volume.
	fmt.Println(ebs.ClientToken("mysql-data"))
	// Output: be163047c87beead2f3f833803d498b87298aa2a5542fd2cef334a5b4b1a9c4e
}

func ExampleXenDeviceName() {
	fmt.Println(ebs.XenDeviceName("/dev/sdf", false))
	fmt.Println(ebs.XenDeviceName("/dev/sdf", true)) // RHEL/CentOS 6
	// Output:
	// /dev/xvdf
	// /dev/xvdj
}

func ExampleNVMeSerial() {
	fmt.Println(ebs.NVMeSerial("vol-0123456789abcdef0"))
	// Output: vol0123456789abcdef0
}
