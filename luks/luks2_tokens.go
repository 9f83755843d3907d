package luks

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// LUKS2 token errors (cryptsetup's `token` action messages name the token).
var (
	// ErrTokenInUse: the token id is taken and replacing was not asked for.
	ErrTokenInUse = errors.New("token in use")
	// ErrTokenNotInUse: no token has this id.
	ErrTokenNotInUse = errors.New("token is not in use")
	// ErrInvalidToken: the token JSON is not an object with a string "type" and a
	// "keyslots" array of existing key slot ids, or a built-in ("luks2-") type this package
	// does not know, or the id is outside 0..31 (LUKS2_token_validate).
	ErrInvalidToken = errors.New("invalid LUKS2 token")
)

const luks2TokensMax = 32

// TokenImportLUKS2 stores a JSON token as `cryptsetup token import` does
// (LUKS2_token_create): id < 0 takes the first free id; an id in use needs replace, and
// the new token then keeps the old one's place among the tokens. The JSON is read as
// json-c reads it and written back as json-c writes it; its members keep their order.
// With keyslot ≥ 0 the token is then assigned to that slot in a second header write, as
// cryptsetup assigns it. It returns the token id.
func TokenImportLUKS2(hdr ReadWriterAt, id int, replace bool, token []byte, keyslot int, rnd io.Reader) (int, error) {
	_, m, err := loadLUKS2ForWrite(hdr, randOr(rnd))
	if err != nil {
		return -1, err
	}
	tokens := m.json.Get("tokens")
	if id >= luks2TokensMax {
		return -1, fmt.Errorf("token %d: %w", id, ErrInvalidToken)
	}
	if id >= 0 && tokens.Get(strconv.Itoa(id)) != nil && !replace {
		return -1, fmt.Errorf("token %d: %w", id, ErrTokenInUse)
	}
	if keyslot >= 0 && m.json.Get("keyslots").Get(strconv.Itoa(keyslot)) == nil {
		return -1, fmt.Errorf("keyslot %d: %w", keyslot, ErrKeyslotInactive)
	}
	v, _, err := jsonc.Parse(token)
	if err != nil {
		return -1, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if id < 0 {
		for i := 0; i < luks2TokensMax; i++ {
			if tokens.Get(strconv.Itoa(i)) == nil {
				id = i
				break
			}
		}
		if id < 0 {
			return -1, fmt.Errorf("%w: all %d tokens in use", ErrInvalidToken, luks2TokensMax)
		}
	}
	if err := validateToken(m, v); err != nil {
		return -1, fmt.Errorf("token %d: %w", id, err)
	}
	key := strconv.Itoa(id)
	tokens.Set(key, v)
	if _, err := m.jsonArea(); err != nil {
		return -1, fmt.Errorf("token %d: %w", id, err)
	}
	if err := writeLUKS2(hdr, m); err != nil {
		return -1, err
	}
	if keyslot >= 0 {
		ks := strconv.Itoa(keyslot)
		if list := v.Get("keyslots"); !hasID(list, ks) {
			v.Set("keyslots", jsonc.NewArray(append(list.Items, jsonc.NewString(ks))...))
			if err := writeLUKS2(hdr, m); err != nil {
				return -1, err
			}
		}
	}
	return id, nil
}

// validateToken is LUKS2_token_validate plus the built-in type check of
// LUKS2_token_create: only luks2-keyring is a known built-in, and it needs a string
// key_description.
func validateToken(m *luks2Metadata, v *jsonc.Value) error {
	if v.Kind != jsonc.Object {
		return fmt.Errorf("%w: not an object", ErrInvalidToken)
	}
	typ := v.Get("type")
	if typ == nil || typ.Kind != jsonc.String {
		return fmt.Errorf("%w: missing string \"type\"", ErrInvalidToken)
	}
	list := v.Get("keyslots")
	if list == nil || list.Kind != jsonc.Array {
		return fmt.Errorf("%w: missing \"keyslots\" array", ErrInvalidToken)
	}
	for _, it := range list.Items {
		if it.Kind != jsonc.String || m.json.Get("keyslots").Get(it.Text) == nil {
			return fmt.Errorf("%w: keyslots lists %s, not a key slot", ErrInvalidToken, jsonc.Marshal(it))
		}
		if _, err := strconv.Atoi(it.Text); err != nil {
			return fmt.Errorf("%w: keyslot id %q", ErrInvalidToken, it.Text)
		}
	}
	if strings.HasPrefix(typ.Text, "luks2-") {
		if typ.Text != "luks2-keyring" {
			return fmt.Errorf("%w: built-in token type %q is not known", ErrInvalidToken, typ.Text)
		}
		if d := v.Get("key_description"); d == nil || d.Kind != jsonc.String {
			return fmt.Errorf("%w: luks2-keyring token without key_description", ErrInvalidToken)
		}
	}
	return nil
}

// TokenAddKeyringLUKS2 is `cryptsetup token add --key-description D`: a luks2-keyring
// token (the JSON text cryptsetup builds, LUKS2_token_keyring_json), then assigned in a
// second write to keyslot, or with keyslot < 0 to every key slot (crypt_token_assign_keyslot
// with CRYPT_ANY_SLOT), or to none when unbound.
func TokenAddKeyringLUKS2(hdr ReadWriterAt, id int, replace bool, description string, keyslot int, unbound bool, rnd io.Reader) (int, error) {
	js := fmt.Sprintf(`{ "type": "%s", "keyslots":[],"key_description":"%s"}`, "luks2-keyring", description)
	if unbound || keyslot >= 0 {
		return TokenImportLUKS2(hdr, id, replace, []byte(js), keyslot, rnd)
	}
	id, err := TokenImportLUKS2(hdr, id, replace, []byte(js), -1, rnd)
	if err != nil {
		return id, err
	}
	_, m, err := loadLUKS2ForWrite(hdr, randOr(rnd))
	if err != nil {
		return id, err
	}
	t := m.json.Get("tokens").Get(strconv.Itoa(id))
	for _, ks := range m.json.Get("keyslots").Members {
		if list := t.Get("keyslots"); !hasID(list, ks.Key) {
			t.Set("keyslots", jsonc.NewArray(append(list.Items, jsonc.NewString(ks.Key))...))
		}
	}
	return id, writeLUKS2(hdr, m)
}

// TokenRemoveLUKS2 removes token id (`cryptsetup token remove`). As cryptsetup asks the
// token's status before it changes the header, a token not in use is reported as such even
// on a header whose requirements forbid the change.
func TokenRemoveLUKS2(hdr ReadWriterAt, id int, rnd io.Reader) error {
	h, m, err := loadLUKS2AnyRequirements(hdr, randOr(rnd))
	if err != nil {
		return err
	}
	if id < 0 || id >= luks2TokensMax {
		return fmt.Errorf("token %d: %w", id, ErrInvalidToken)
	}
	if !m.json.Get("tokens").Delete(strconv.Itoa(id)) {
		return fmt.Errorf("token %d: %w", id, ErrTokenNotInUse)
	}
	if err := h.UnmetRequirements(false); err != nil {
		return err
	}
	return writeLUKS2(hdr, m)
}

// ErrTokenNotAssigned: the token does not list the key slot (token unassign).
var ErrTokenNotAssigned = errors.New("token is not assigned to the keyslot")

// TokenAssignLUKS2 adds keyslot to token id's "keyslots" (crypt_token_assign_keyslot);
// a slot already listed stays listed once. The slot must exist. Both header copies are
// written even when nothing changed, as cryptsetup commits the header either way.
func TokenAssignLUKS2(hdr ReadWriterAt, id, keyslot int, rnd io.Reader) error {
	return tokenAssign(hdr, id, keyslot, true, rnd)
}

// TokenUnassignLUKS2 is `cryptsetup token unassign`: keyslot leaves token id's "keyslots".
// A token that does not exist or does not list the slot gives ErrTokenNotAssigned (with
// ErrTokenNotInUse for the former), checked before the header's requirements as cryptsetup
// checks it (crypt_token_is_assigned is unrestricted).
func TokenUnassignLUKS2(hdr ReadWriterAt, id, keyslot int, rnd io.Reader) error {
	return tokenAssign(hdr, id, keyslot, false, rnd)
}

func tokenAssign(hdr ReadWriterAt, id, keyslot int, assign bool, rnd io.Reader) error {
	if id < 0 || id >= luks2TokensMax {
		return fmt.Errorf("token %d: %w", id, ErrInvalidToken)
	}
	if keyslot < 0 || keyslot >= luks2KeyslotsMax {
		return fmt.Errorf("keyslot %d: %w", keyslot, ErrInvalidParameter)
	}
	h, m, err := loadLUKS2AnyRequirements(hdr, randOr(rnd))
	if err != nil {
		return err
	}
	t := m.json.Get("tokens").Get(strconv.Itoa(id))
	if t == nil {
		if assign {
			return fmt.Errorf("token %d: %w", id, ErrTokenNotInUse)
		}
		return fmt.Errorf("token %d, keyslot %d: %w (%w)", id, keyslot, ErrTokenNotAssigned, ErrTokenNotInUse)
	}
	list := t.Get("keyslots")
	if list == nil || list.Kind != jsonc.Array {
		return fmt.Errorf("%w: token %d has no keyslots array", ErrCorruptHeader, id)
	}
	slot := strconv.Itoa(keyslot)
	kept := []*jsonc.Value{}
	listed := false
	for _, it := range list.Items {
		if it.Kind == jsonc.String && it.Text == slot {
			listed = true
			continue
		}
		kept = append(kept, it)
	}
	if !assign && !listed {
		return fmt.Errorf("token %d, keyslot %d: %w", id, keyslot, ErrTokenNotAssigned)
	}
	if assign && m.json.Get("keyslots").Get(slot) == nil {
		return fmt.Errorf("keyslot %d: %w", keyslot, ErrKeyslotInactive)
	}
	if err := h.UnmetRequirements(false); err != nil {
		return err
	}
	if !assign {
		t.Set("keyslots", jsonc.NewArray(kept...))
	} else if !listed {
		t.Set("keyslots", jsonc.NewArray(append(list.Items, jsonc.NewString(slot))...))
	}
	return writeLUKS2(hdr, m)
}

// TokenExportLUKS2 returns token id as json-c prints it (crypt_token_json_get).
func TokenExportLUKS2(hdr io.ReaderAt, id int) ([]byte, error) {
	h, err := ReadHeader2(hdr)
	if err != nil {
		return nil, err
	}
	tree, _, err := jsonc.Parse(h.JSON)
	if err != nil {
		return nil, fmt.Errorf("%w: JSON metadata: %v", ErrCorruptHeader, err)
	}
	t := tree.Get("tokens").Get(strconv.Itoa(id))
	if id < 0 || id >= luks2TokensMax || t == nil {
		return nil, fmt.Errorf("token %d: %w", id, ErrTokenNotInUse)
	}
	return jsonc.Marshal(t), nil
}
