package consolekeys_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

// moto's GetConsoleOutput text (its SAMPLE_CONSOLE_OUTPUT, head): an old Xen boot log, no
// prompt. The keeper's moto tests read it as the console of an instance that is not stuck.
const motoConsole = "Linux version 2.6.16-xenU (builder@patchbat.amazonsa) (gcc version 4.0.1 20050727 (Red Hat 4.0.1-5)) #1 SMP Thu Oct 26 08:41:26 SAST 2006\n" +
	"BIOS-provided physical RAM map:\n Xen: 0000000000000000 - 000000006a400000 (usable)\n980MB HIGHMEM available.\n" +
	"IRQ lockup detection disabled\nBuilt 1 zonelists\nKernel command line: root=/dev/sda1 ro 4\nEnabling fast FPU save and restore... done.\n"

// StuckPrompt is the keeper's one stuck-prompt rule. The table holds the samples of the two
// detectors it replaced (keeper's "prompt is the last line, printk skipped" and this
// package's "no sign of a finished boot after the prompt"), with the answer the single rule
// gives; the cases marked "differed" are those where the two used to disagree.
func TestStuckPrompt(t *testing.T) {
	const (
		crypttab = "Please enter passphrase for disk data (vol0123456789abcdef0):"
		answered = "[  OK  ] Finished systemd-cryptsetup@data.service - Cryptography Setup for data.\n"
	)
	file := func(name string) string { return string(sample(t, name)) }
	for _, c := range []struct {
		name, text string
		line, disk string // "" = not stuck
	}{
		// The keeper's samples.
		{"systemd before v246 ends with !, differed", "[  OK  ] Reached target Basic System.\nPlease enter passphrase for disk data (data)!", "Please enter passphrase for disk data (data)!", "data"},
		{"cryptsetup", "Begin: Loading essential drivers ... done.\nEnter passphrase for /dev/nvme1n1:", "Enter passphrase for /dev/nvme1n1:", "/dev/nvme1n1"},
		{"an earlier boot asked, the current one is up", "Linux version 6.1\nPlease enter passphrase for disk data\nLinux version 6.1\nlogin:", "", ""},
		{"cloud-init finished", "Linux version 6.1\nCloud-init v. 23 finished", "", ""},
		{"answered, then a login prompt", "[    0.000000] Linux version 6.1.0-13-cloud-amd64\nPlease enter passphrase for disk data (data):\n" +
			"[  OK  ] Finished systemd-cryptsetup@data.service\n[  OK  ] Reached target multi-user.target\n\nweb-1 login: ", "", ""},
		{"answered, a target reached", "Linux version 6.1\nPlease enter passphrase for disk data (data): \n[  OK  ] Reached target Local File Systems.\n", "", ""},
		{"kernel messages while it waits", "Linux version 6.1\nPlease enter passphrase for disk data (data): \n[   12.345678] random: crng init done\n\n", "Please enter passphrase for disk data (data):", "data"},
		{"empty", "", "", ""},
		{"with a mount point (the rescue tests' console)", "Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org)\n[  OK  ] Reached target cryptsetup-pre.target.\n" +
			"Please enter passphrase for disk data (data) on /data: ", "Please enter passphrase for disk data (data) on /data:", "data"},
		{"the VM rescue test's gate", "         Starting systemd-cryptsetup@data.service - Cryptography Setup for data...\n" +
			"Please enter passphrase for disk Amazon Elastic Block Store (data): ", "Please enter passphrase for disk Amazon Elastic Block Store (data):", "Amazon Elastic Block Store"},
		{"moto's console", motoConsole, "", ""},
		// This package's samples.
		{"a start job still running after the prompt, differed", file("stuck-crypttab.txt"), crypttab, "data"},
		{"Debian's cryptroot, differed", file("stuck-initramfs.txt"), "Please unlock disk data_crypt:", "data_crypt"},
		{"cryptsetup after a kernel banner", "[    0.000000] Linux version 6.1\nEnter passphrase for /dev/nvme1n1: \n", "Enter passphrase for /dev/nvme1n1:", "/dev/nvme1n1"},
		{"answered, sshd started", file("recovered-after-prompt.txt"), "", ""},
		{"a new boot that has not prompted", file("stuck-crypttab.txt") + "[    0.000000] Linux version 6.1.0-28-cloud-amd64\n[    2.0] nvme nvme1: pci function\n", "", ""},
		{"debian first boot", file("debian12-first-boot.txt"), "", ""},
		{"al2023 first boot", file("al2023-first-boot.txt"), "", ""},
		// Where the two used to differ on text neither had a sample of: the stricter answer.
		{"the boot went on without a done sign, differed", file("stuck-crypttab.txt") + answered, "", ""},
		{"a prompt quoted inside a log message, differed", "Linux version 6.1\naudit: name=\"Enter passphrase for x:\" comm=\"cat\"\n", "", ""},
		{"text after the prompt on its line, differed", "Linux version 6.1\nEnter passphrase for /dev/nvme1n1: ok\n", "", ""},
		{"a prompt written through the kernel log, differed", "Linux version 6.1\n[   30.100000] Please enter passphrase for disk data (data):\n", "", ""},
		// What a real serial console adds.
		{"a kernel message on the prompt's line", "Linux version 6.1\nPlease unlock disk data_crypt: [    5.123456] random: crng init done\n", "Please unlock disk data_crypt:", "data_crypt"},
		{"systemd's colours and erase-line, CR endings", "Linux version 6.1\r\n" + crypttab + " \r\n\x1b[K[\x1b[0;1;31m*\x1b[0m\x1b[0;31m*     \x1b[0m] (1 of 2) A start job is running for Cryptography Setup for data (5s / no limit)\r",
			crypttab, "data"},
		// What systemd's ask_password_tty (v243 and later, Debian 12's 252 included) writes:
		// the highlight, the lock glyph, the message, a blank, "(press TAB for no echo) " in
		// grey; "(no echo) " after TAB; a "*" per key after erasing the hint with "\b \b".
		{"systemd 252 on a serial console", file("stuck-systemd252.txt"), "Please enter passphrase for disk data (data):", "data"},
		{"press TAB, plain", "Linux version 6.1\n\U0001F510 Please enter passphrase for disk data (data): (press TAB for no echo) ", "Please enter passphrase for disk data (data):", "data"},
		{"press TAB, grey, cursor moved back", "Linux version 6.1\nPlease enter passphrase for disk data (data): \x1b[90m(press TAB for no echo) \x1b[0m\x1b[24D", "Please enter passphrase for disk data (data):", "data"},
		{"press TAB, then a kernel message", "Linux version 6.1\nPlease enter passphrase for disk data (data): (press TAB for no echo) [   11.785057] scsi 34:0:0:0: Direct-Access\n", "Please enter passphrase for disk data (data):", "data"},
		{"TAB pressed: no echo", "Linux version 6.1\nPlease enter passphrase for disk data (data): (no echo) ", "Please enter passphrase for disk data (data):", "data"},
		{"skipped with ^D: the boot went on", "Linux version 6.1\nPlease enter passphrase for disk data (data): (skipped)\n", "", ""},
		{"typed asterisks", "Linux version 6.1\n" + crypttab + " ********\n", crypttab, "data"},
		{"typed asterisks, no blank", "Linux version 6.1\n" + crypttab + "********", crypttab, "data"},
		{"the hint erased, then asterisks", "Linux version 6.1\n" + crypttab + " (press TAB for no echo) " + strings.Repeat("\b \b", 24) + "***", crypttab, "data"},
		{"systemd's job line in its unit-name turn", "Linux version 6.1\n" + crypttab + "\n[*     ] (1 of 3) Job systemd-cryptsetup@data.service/start running (38s / no limit)\n", crypttab, "data"},
		{"a stop job is no wait for the prompt", "Linux version 6.1\n" + crypttab + "\n[ ***  ] A stop job is running for Session 1 of user root (3s / 1min 30s)\n", "", ""},
		{"passphrase or recovery key", "Linux version 6.1\nPlease enter passphrase or recovery key for disk data (data): ", "Please enter passphrase or recovery key for disk data (data):", "data"},
		// A kernel without printk timestamps (printk.time=0): its messages cannot be told
		// from userspace output, so they read as a boot that went on (Debian's and
		// Amazon Linux's cloud kernels print timestamps).
		{"kernel message without a timestamp after the prompt", "Linux version 6.1\n" + crypttab + "\nnvme nvme1: I/O 12 QID 3 timeout, aborting\n", "", ""},
		{"kernel message without a timestamp on the prompt's line", "Linux version 6.1\n" + crypttab + " random: crng init done\n", "", ""},
		// Only known prefixes before the prompt: a log line that ends in one is no prompt.
		{"a journal line ending in a prompt", "Linux version 6.1\n[  OK  ] Reached target multi-user.target\nDec 04 22:00:00 web-1 systemd-cryptsetup[512]: Enter passphrase for /dev/nvme2n1:", "", ""},
		{"a bare journal prefix", "Linux version 6.1\nsystemd-cryptsetup[412]: Enter passphrase for /dev/nvme1n1:", "", ""},
		{"initramfs's unfinished Begin line", "Linux version 6.1\nBegin: Running /scripts/local-top ... Please unlock disk data_crypt: ", "Please unlock disk data_crypt:", "data_crypt"},
		{"a Begin line with a journal prefix in it", "Linux version 6.1\nBegin: x ... systemd[1]: Enter passphrase for /dev/x:", "", ""},
		{"other text before the prompt", "Linux version 6.1\necho Please unlock disk data: ", "", ""},
		// The kernel mounting a dm device after the prompt: the volume is open.
		{"ext4 on dm-0 mounted after the prompt", "Linux version 6.1\n" + crypttab + "\n[   20.100000] EXT4-fs (dm-0): mounted filesystem 1c0b1a2e-… r/w with ordered data mode. Quota mode: none.\n", "", ""},
		{"xfs on dm-1 mounting, on the prompt's line", "Linux version 6.1\n" + crypttab + " [   20.1] XFS (dm-1): Mounting V5 Filesystem\n", "", ""},
		{"another kernel message naming dm-0 is no mount", "Linux version 6.1\n" + crypttab + "\n[   20.1] device-mapper: uevent: version 1.0.3 (dm-0)\n", crypttab, "data"},
		{"a job line that overwrote the prompt with CR", "Linux version 6.1\n" + crypttab + "\r[ ***  ] A start job is running for data (1s / no limit)", crypttab, "data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := consolekeys.StuckPrompt([]byte(c.text))
			if c.line == "" {
				assert.Nil(t, p)
				return
			}
			require.NotNil(t, p)
			assert.Equal(t, consolekeys.Prompt{Line: c.line, Disk: c.disk}, *p)
			// Parse reports the same.
			r, err := consolekeys.Parse([]byte(c.text))
			require.NoError(t, err)
			assert.Equal(t, p, r.Prompt)
		})
	}
}

func FuzzStuckPrompt(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Linux version 6.1\nPlease enter passphrase for disk data (data)!\n[ 1.2] x\n"))
	f.Add([]byte("Please unlock disk d: [    5.1] random\r\x1b[K[ ***  ] A start job is running for d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := consolekeys.StuckPrompt(data)
		if p != nil {
			if p.Disk == "" || !strings.Contains(p.Line, p.Disk) || !bytes.Contains(data, []byte(p.Line)) {
				t.Fatalf("prompt %+v not from its text", p)
			}
		}
		// Kernel messages and blank lines after the text change nothing; a finished boot's
		// login prompt ends any wait; a new boot's banner too.
		if q := consolekeys.StuckPrompt(append(bytes.Clone(data), "\n[   99.000001] random: crng init done\n\n"...)); !equal(p, q) {
			t.Fatalf("a kernel line changed %+v to %+v", p, q)
		}
		if q := consolekeys.StuckPrompt(append(bytes.Clone(data), "\nweb-1 login: \n"...)); q != nil {
			t.Fatalf("stuck after a login prompt: %+v", q)
		}
		if q := consolekeys.StuckPrompt(append(bytes.Clone(data), "\n[    0.000000] Linux version 6.1\n"...)); q != nil {
			t.Fatalf("stuck after a new boot's banner: %+v", q)
		}
	})
}

func equal(a, b *consolekeys.Prompt) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
