// Package vmtest runs a package's own tests inside a qemu VM booting the Debian cloud kernel.
package vmtest
