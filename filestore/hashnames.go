package filestore

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"

	"github.com/filesession/filesession"
)

// Hashed file names (Options.HashNames).
//
// With HashNames the session file of ID id is <Prefix><h><Extension>, where
// h, the name key, is a hash of id of exactly IDLength characters of the ID
// alphabet: the first IDLength characters of the unpadded base64url text of
// SHA-256(nameLabel, NUL, i, id) for i = 0, 1, ... concatenated (one block
// for IDs of up to 43 characters), or of HMAC-SHA-256(NameKey, ...) with
// the same input when NameKey is set. Since h looks like an ID, every part
// of the store that works from names alone (the reaper, List, Scan, the
// temporary and quarantined files) works unchanged on name keys: every
// public method turns the IDs it is given into name keys first, and from
// there locks, expiry hints and log lines are by name key.
//
// What a name alone cannot give back is the ID, which List must report.
// So the file keeps it, as a reserved member "__id" (last in the object,
// rewritten on every save; encrypted with the rest under EncryptionKeys),
// and every read checks that the hash of that ID is the file's name key: a
// file renamed, copied or swapped onto another session's name is not found
// (with a warning), even in a store that does not encrypt.
//
// The hash needs no key to do its job: session IDs carry at least 128
// random bits (HashNames refuses IDLength under 22), so a name reveals
// nothing of the ID it hashes, and there is no ID to guess from it. NameKey
// additionally stops someone who has an ID from another source (an old
// log) and a listing of the directory from telling whether that session is
// still there. A NameKey is not a rotating key: every file is named by it,
// so changing it orphans every session (each becomes unreachable and stays
// on disk until an operator removes it).

const (
	// keyIDMember is the reserved member that holds the session ID under
	// HashNames.
	keyIDMember = "__id"

	nameLabel = "filesession/filestore session file name"

	// minHashedIDLength is the shortest IDLength HashNames accepts: 22
	// base64url characters, 132 bits, for a name hash that does not
	// collide either.
	minHashedIDLength = 22
	// minNameKey is the shortest NameKey accepted, in bytes.
	minNameKey = 16
)

// ErrNameMismatch: under Options.HashNames, the file at a session's hashed
// name has no __id member, or one whose hash is not that name. It was
// renamed, copied or swapped from another session's file, or written by a
// store without HashNames. Errors for it also match
// filesession.ErrNotFound.
var ErrNameMismatch = errors.New("filestore: session file's __id does not match its hashed name")

// initNames validates o's HashNames and NameKey into c.
func (c *sealer) initNames(o *Options) error {
	switch {
	case !o.HashNames && o.NameKey != nil:
		return errors.New("filestore: NameKey is set but HashNames is not")
	case !o.HashNames:
		return nil
	case o.NodeCompatible:
		return errors.New("filestore: HashNames cannot be used with NodeCompatible: Node's session-file-store names files by session ID")
	case o.IDLength < minHashedIDLength:
		return fmt.Errorf("filestore: HashNames needs IDLength of at least %d, not %d", minHashedIDLength, o.IDLength)
	case o.NameKey != nil && len(o.NameKey) < minNameKey:
		return fmt.Errorf("filestore: NameKey is %d bytes; it must be at least %d random bytes", len(o.NameKey), minNameKey)
	}
	if o.NameKey != nil {
		c.nameKey = append([]byte(nil), o.NameKey...)
	}
	return nil
}

// hashName returns the name key of id under HashNames.
func (c *sealer) hashName(id string) string {
	var buf [256]byte
	sum := buf[:0]
	var h hash.Hash
	if c.nameKey != nil {
		h = hmac.New(sha256.New, c.nameKey)
	} else {
		h = sha256.New()
	}
	for i := byte(0); base64.RawURLEncoding.EncodedLen(len(sum)) < c.idLength; i++ {
		h.Reset()
		h.Write([]byte(nameLabel))
		h.Write([]byte{0, i})
		h.Write([]byte(id))
		sum = h.Sum(sum)
	}
	return base64.RawURLEncoding.EncodeToString(sum)[:c.idLength]
}

// nameKey returns what names the session file of id: id itself, or its
// hash under HashNames. Every public method that takes a session ID calls
// it right after begin has validated the ID, and uses the name key from
// there on (file name, lock, expiry hint, log lines); only encode needs the
// ID itself, to write it into the file.
func (s *Store) nameKey(id string) string {
	if c := s.opts.crypt; c.hashNames {
		return c.hashName(id)
	}
	return id
}

// idOfName returns the session ID of the file whose name holds nameKey, as
// far as the name tells: nameKey itself, or "" under HashNames, where only
// the file's contents know.
func (s *Store) idOfName(nameKey string) string {
	if s.opts.crypt.hashNames {
		return ""
	}
	return nameKey
}

// checkID returns the __id member of the plaintext file plain, if the hash
// of it is nameKey. The last __id member counts, as JSON.parse would have
// it (and rewrites drop the others).
func (c *sealer) checkID(nameKey string, plain []byte) (string, error) {
	var raw []byte
	err := scanObject(plain, func(key []byte, escaped bool, val []byte) error {
		if k, err := decodeKey(key, escaped); err == nil && k == keyIDMember {
			raw = val
		}
		return nil
	})
	if err != nil {
		// Not even JSON: decoding will say so and the file is quarantined
		// as corrupt, which is what it is.
		return "", nil
	}
	id, ok := stringValue(raw)
	if raw == nil || !ok || !filesession.ValidID(id, c.idLength) ||
		subtle.ConstantTimeCompare([]byte(c.hashName(id)), []byte(nameKey)) != 1 {
		return "", ErrNameMismatch
	}
	return id, nil
}

// appendIDMember returns the plaintext file plain (an object with at least
// one member, as encodeRecord writes) with "__id":id as its last member.
func appendIDMember(plain []byte, id string) []byte {
	plain = plain[:len(plain)-1] // the closing '}'
	plain = append(plain, `,"`+keyIDMember+`":`...)
	plain = appendString(plain, id)
	return append(plain, '}')
}

// withoutID returns old without its __id members, which encode writes
// afresh for the session's (possibly new) ID; old itself if HashNames is
// off or it has none.
func (s *Store) withoutID(old *stored) *stored {
	if old == nil || !s.opts.crypt.hashNames {
		return old
	}
	n := 0
	for _, m := range old.members {
		if m.key == keyIDMember {
			n++
		}
	}
	if n == 0 {
		return old
	}
	c := *old
	c.members = make([]member, 0, len(old.members)-n)
	for _, m := range old.members {
		if m.key != keyIDMember {
			c.members = append(c.members, m)
		}
	}
	return &c
}
