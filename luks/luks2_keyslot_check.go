package luks

// Check validates the PBKDF parameters of a new LUKS2 key slot as cryptsetup's
// set_pbkdf_params does, before any passphrase is read or anything written: the same
// *OptionError (PBKDF set) that AddKeyLUKS2 and ChangeKeyLUKS2 would return later.
func (o LUKS2KeyslotOptions) Check() error {
	hashName := o.Hash
	if hashName == "" {
		hashName = "sha256"
	}
	fo := LUKS2FormatOptions{PBKDF: o.PBKDF, IterTime: o.IterTime,
		ForceIterations: o.ForceIterations, Memory: o.Memory, Parallel: o.Parallel}
	_, err := fo.resolveKDF(hashName)
	return err
}

// MemoryLimit is the argon2 memory cost, in KiB, that these options leave as
// libcryptsetup's limit for the verb (the PBKDF's memory after its caps: --pbkdf-memory
// or 1 GiB, at most half of the RAM); 0 for pbkdf2 or invalid options. cryptsetup warns
// "keyslot operation could fail as it requires more than available memory" before it
// opens an argon2 slot whose memory cost is above it.
func (o LUKS2KeyslotOptions) MemoryLimit() uint32 {
	hashName := o.Hash
	if hashName == "" {
		hashName = "sha256"
	}
	fo := LUKS2FormatOptions{PBKDF: o.PBKDF, IterTime: o.IterTime,
		ForceIterations: o.ForceIterations, Memory: o.Memory, Parallel: o.Parallel}
	k, err := fo.resolveKDF(hashName)
	if err != nil || k.typ == KDFPBKDF2 {
		return 0
	}
	return k.memory
}

// UnlockOrder lists the keyslots in the order Unlock2 tries them without
// UnlockOptions.Keyslot: priority "prefer" first, then "normal", each in the JSON's order;
// "ignore" slots are left out.
func (h *Header2) UnlockOrder() []int {
	var out []int
	for _, prio := range []int{PriorityPrefer, PriorityNormal} {
		for _, i := range h.keyslotOrder() {
			p := PriorityNormal
			if ks := h.Keyslots[i]; ks.Priority != nil {
				p = *ks.Priority
			}
			if p == prio {
				out = append(out, i)
			}
		}
	}
	return out
}
