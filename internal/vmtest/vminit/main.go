// Command vminit is the init of vmtest VMs started from packages whose test binary cannot be
// the guest (its TestMain does not call vmtest.Main): it sets the guest up like vmtest.Main
// and runs the guest function Options.Guest names among vmtest's own (the sshd-only guest).
// Tests get it with vmtest.InitProgram; run by hand it does nothing.
package main

import "github.com/cloudluks/cloudluks/internal/vmtest"

func main() { vmtest.InitMain() }
