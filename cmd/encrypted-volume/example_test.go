package main

import (
	"fmt"
	"strings"
)

// A hooks file for unlock: the seed's advice to "make sure MySQL is running" after the
// volume is back, as commands that run without a shell and without the passphrase.
func Example_hooksFile() {
	cmds, err := parseHooksFile(`# run after /encrypted_vol is mounted
systemctl start mysqld
/usr/local/bin/notify --message 'encrypted volume is back'
`)
	if err != nil {
		panic(err)
	}
	for _, c := range cmds {
		fmt.Printf("%q\n", c)
	}
	// Output:
	// ["systemctl" "start" "mysqld"]
	// ["/usr/local/bin/notify" "--message" "encrypted volume is back"]
}

// What setup refuses to format without --force.
func Example_probe() {
	dev := make([]byte, probeSize)
	fmt.Printf("%q\n", probe(dev))
	copy(dev, "LUKS\xba\xbe")
	fmt.Printf("%q\n", probe(dev))
	// Output:
	// ""
	// "LUKS header"
}

// The program's command table.
func Example_usage() {
	var b strings.Builder
	(&app{}).usage(&b)
	fmt.Print(b.String())
	// Output:
	// usage: encrypted-volume <verb> [flags]   (encrypted-volume <verb> -h for the flags)
	//   setup     create/attach a volume, LUKS-format, open, mkfs, mount, disable boot-time unlock
	//   status    show what is attached, opened and mounted, and whether boot-time unlock is off
	//   teardown  unmount, close the mapping, optionally detach and delete the volume
	//   unlock    after a reboot: resolve the device, open, mount, run post-mount hooks
	//   swap      encrypted swap on an instance-store disk or EBS volume, key only in memory
	//   tmp       encrypted /tmp on an instance-store disk or EBS volume, key only in memory
	//   serve     for the keeper (SSH forced command): state, header, unlock with a volume key from stdin
}
