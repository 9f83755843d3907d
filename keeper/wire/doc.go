// Package wire is the protocol the keeper (off the cloud) speaks with the instance side
// (`encrypted-volume serve`, run by sshd from a forced command) over the SSH session's
// stdin/stdout. It carries public facts one way (boot id, volume state, the LUKS header)
// and one secret the other way (the volume key), never a passphrase.
//
// # Framing
//
// Every message is one frame:
//
//	offset  size  field
//	0       4     N, payload length, big-endian uint32 (the type byte is not counted)
//	4       1     T, message type (table below)
//	5       N     payload
//
// A reader checks T and N against the per-type limit before it allocates anything, and for
// the large types it grows its buffer only as bytes actually arrive, so a hostile length
// costs the reader nothing. A frame of an unknown type, or longer than its type allows, is
// a protocol error (ErrUnknownType, ErrFrameTooLarge); the stream is then out of step and
// both ends close it.
//
//	T     name            direction         payload                     limit
//	0x01  Hello           both, first       JSON Hello                  4 KiB
//	0x02  StateRequest    keeper→instance   empty                       0
//	0x03  State           instance→keeper   JSON State                  64 KiB
//	0x04  HeaderRequest   keeper→instance   empty                       0
//	0x05  Header          instance→keeper   raw LUKS header bytes       32 MiB (MaxHeaderSize)
//	0x06  Unlock          keeper→instance   JSON UnlockRequest          4 KiB
//	0x07  Key             keeper→instance   raw volume key              512 B (MaxKeySize)
//	0x08  Result          instance→keeper   JSON Result                 16 KiB
//	0x09  Error           instance→keeper   JSON Error                  4 KiB
//
// JSON payloads are single UTF-8 JSON objects with nothing after them; unknown fields are
// ignored (a newer peer of the same major version may add some), missing fields are zero.
//
// # Conversation
//
// The keeper opens with Hello {"protocol":1,"program":"keeper 0.3"}. The instance answers
// with its own Hello, or, if it does not speak that protocol version, with an Error frame
// of code "version" and closes. A keeper that receives a Hello with another version stops
// (ErrVersion). Then the keeper sends requests one at a time and reads one reply each:
//
//	StateRequest                → State | Error
//	HeaderRequest               → Header | Error
//	Unlock, then Key            → Result | Error
//
// Unlock carries what the keeper checked (the boot id and the header's LUKS UUID it read a
// moment ago) and the key length; the very next frame is the Key frame of exactly that
// length: the raw volume key bytes, never in JSON and never encoded. The instance re-checks
// boot id and UUID under a lock and answers Result with status "unlocked",
// "already-unlocked" (another keeper was first: not an error) or "refused" with a reason.
// An Error frame (codes "bad-request", "version", "refused", "internal") carries a message
// meant for a log: it never contains a secret. After an Error for a malformed frame the
// instance closes the stream; after an Error from its handler it waits for the next request.
// The keeper ends the conversation by closing its side; the instance then returns.
//
// # The key in memory
//
// Client.Unlock writes the caller's key slice straight to the transport (no copy, no
// buffering); the caller zeroes it. Serve reads the Key frame into a fixed array of its
// own, hands the handler a slice of it, and zeroes it when the handler returns: a Handler
// must not keep the slice. Neither end passes the key through encoding/json, bufio or fmt.
//
// # Deadlines
//
// Reads and writes stop when ctx ends if the transport can be interrupted: when it has
// SetReadDeadline / SetWriteDeadline (net.Conn, an *os.File on a pipe), the context's
// deadline is applied and a cancellation sets a deadline in the past. Other transports
// (the pipes of an x/crypto/ssh session) cannot be interrupted from here: the caller
// closes the session when its context ends, which makes the pending read fail.
package wire
