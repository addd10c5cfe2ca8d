package filestore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// Encryption at rest (Options.EncryptionKeys) and hashed file names
// (Options.HashNames, see hashnames.go).
//
// An encrypted session file is still one line of JSON, an envelope, so that
// cat shows what it is:
//
//	{"filesession":"aes-256-gcm-v1","kid":"1a2b3c4d","nonce":"<24 bytes, base64>","data":"<ciphertext, base64>"}
//
// The plaintext is exactly the file the store would write without
// encryption (the cookie object, the values, the __ timestamps), so
// everything that works on file contents (byte-preserving rewrites, expiry,
// the reaper's re-check) works on the decrypted bytes unchanged. Nothing of
// the session is outside in clear: not its expiry (the reaper uses the
// file's access time as the hint, as always, and decrypts when it must
// look), not its user, not its ID.
//
// The construction, "aes-256-gcm-v1":
//
//   - nonce is 24 random bytes, fresh for every write: salt (the first 12)
//     and iv (the last 12).
//   - The file key is HKDF-SHA-256(key = the ring key, salt, info =
//     fileKeyInfo), 32 bytes. A fresh key per write is what lifts the limit
//     of 2^32 messages per key that NIST SP 800-38D puts on random 96-bit
//     GCM nonces (a busy site saves that often in weeks): a nonce would now
//     have to repeat under the same file key, 192 random bits in all.
//   - data is AES-256-GCM(file key, iv, plaintext, aad), tag appended.
//   - aad is aadLabel, a NUL, and the file's name key: the session ID, or
//     under HashNames its hash (which is a function of the ID alone). So a
//     file's contents copied or swapped onto another session's name fail
//     authentication: both are "not found".
//   - kid is the first 8 hex digits of SHA-256(kidLabel, NUL, ring key). It
//     is only a hint to try that key first; it is not authenticated and
//     need not be, as every key of the ring is tried before giving up.
//
// Failures, and why they are "not found" rather than corrupt: a file that
// no key of the ring opens (the wrong key, a key dropped too early, a
// tampered or swapped file), a plaintext file in a store with keys, and an
// envelope in a store without keys all make Load return an error matching
// filesession.ErrNotFound (and one of the sentinels below), with a
// rate-limited warning; the file is left exactly as it was. Quarantining
// them would turn one wrong line of configuration into every session moved
// aside, and the operator fixing the key ring would find nothing to read.
// What is quarantined is what is corrupt by any key: a file that is not
// JSON, or an envelope of this version that does not parse (ErrEnvelope).

// KeySize is the length in bytes of every key of Options.EncryptionKeys.
const KeySize = 32

const (
	// envelopeMember is the first member of every envelope, and the
	// marker that tells an envelope from a plaintext session file (whose
	// first member is always "cookie" when this store or Node writes it).
	envelopeMember = "filesession"
	// envelopeAlg is the construction described above, and its version.
	envelopeAlg = "aes-256-gcm-v1"

	kidLabel    = "filesession/filestore key id"
	fileKeyInfo = "filesession/filestore aes-256-gcm-v1 file key"
	aadLabel    = "filesession/filestore aes-256-gcm-v1 session"

	saltSize  = 12
	ivSize    = 12 // the standard GCM nonce size
	nonceSize = saltSize + ivSize
	kidLen    = 8
)

// Sentinels of files the store will not use as sessions because of
// encryption or hashed names. Errors that Load, Save, Touch and the rest
// return for them also match filesession.ErrNotFound (never ErrCorrupt);
// Scan reports such files as KindUnreadable with one of these in Err.
var (
	// ErrUndecryptable: no key of Options.EncryptionKeys opens the file. It
	// was encrypted with a key that is not (or no longer) in the ring, or
	// it was tampered with, or moved or copied from another session's file,
	// or written by a newer version in a format this one does not know.
	ErrUndecryptable = errors.New("filestore: no key of the encryption key ring opens the session file")
	// ErrPlaintextFile: the store encrypts (Options.EncryptionKeys), but
	// the file is a plaintext session file. The store never reads
	// plaintext when it has keys: anyone able to put a file in the
	// directory could otherwise forge a session. Rekey with
	// RekeyOptions.Plaintext encrypts such files, for migrating a store.
	ErrPlaintextFile = errors.New("filestore: session file is not encrypted, and the store requires encryption")
	// ErrEncryptedFile: the file is an encrypted envelope, but the store
	// has no Options.EncryptionKeys.
	ErrEncryptedFile = errors.New("filestore: session file is encrypted, and the store has no encryption keys")
	// ErrEnvelope: the file starts like an envelope of this version but
	// does not parse as one (truncated, hand-edited, bad base64). It is
	// corrupt by any key, so the store quarantines it like a file that is
	// not JSON (Scan: KindCorrupt).
	ErrEnvelope = errors.New("filestore: malformed encryption envelope")
)

// ringKey is one key of the ring, with its key ID.
type ringKey struct {
	kid string
	key []byte
}

// sealer holds what Options.EncryptionKeys, HashNames and NameKey turn
// into: the key ring, the name hash, and the warning limiter. withDefaults
// builds one for every store, even one that uses neither feature, since a
// plaintext store still warns about an envelope it finds.
type sealer struct {
	// keys is the ring, the encrypting key first; empty without
	// encryption.
	keys []ringKey
	// hashNames is Options.HashNames; nameKey Options.NameKey (nil: an
	// unkeyed hash); idLength the length of IDs and of name hashes.
	hashNames bool
	nameKey   []byte
	idLength  int

	warn warnLimiter
}

// newSealer validates o's encryption and name options (o has its other
// defaults already) and builds its sealer.
func newSealer(o *Options) (*sealer, error) {
	c := &sealer{hashNames: o.HashNames, idLength: o.IDLength}
	if len(o.EncryptionKeys) > 0 && o.NodeCompatible {
		return nil, errors.New("filestore: EncryptionKeys cannot be used with NodeCompatible: Node's session-file-store could not read the files")
	}
	for i, k := range o.EncryptionKeys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("filestore: EncryptionKeys[%d] is %d bytes; every key must be exactly %d random bytes", i, len(k), KeySize)
		}
		if !bytes.ContainsFunc(k, func(r rune) bool { return r != 0 }) {
			// Django's empty-key hijack (CVE-2015-3982) started as a
			// placeholder key; a key of zero bytes is one.
			return nil, fmt.Errorf("filestore: EncryptionKeys[%d] is all zero bytes, a placeholder rather than a key", i)
		}
		rk := ringKey{kid: keyID(k), key: bytes.Clone(k)}
		for j, prev := range c.keys {
			if prev.kid == rk.kid {
				return nil, fmt.Errorf("filestore: EncryptionKeys[%d] and [%d] are the same key", j, i)
			}
		}
		c.keys = append(c.keys, rk)
	}
	if err := c.initNames(o); err != nil {
		return nil, err
	}
	return c, nil
}

// keyID is the kid of a ring key.
func keyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte(kidLabel))
	h.Write([]byte{0})
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:kidLen]
}

// encrypted reports whether the store encrypts.
func (c *sealer) encrypted() bool { return len(c.keys) > 0 }

// fileAEAD returns AES-256-GCM under the file key that key and salt derive.
func fileAEAD(key, salt []byte) (cipher.AEAD, error) {
	fk, err := hkdf.Key(sha256.New, key, salt, fileKeyInfo, KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(fk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// aad is the associated data of the file whose name key is nameKey.
func aad(nameKey string) []byte {
	b := make([]byte, 0, len(aadLabel)+1+len(nameKey))
	b = append(b, aadLabel...)
	b = append(b, 0)
	return append(b, nameKey...)
}

// seal returns the envelope of plain, the file of name key nameKey,
// encrypted with the first key of the ring.
func (c *sealer) seal(nameKey string, plain []byte) ([]byte, error) {
	k := c.keys[0]
	var nonce [nonceSize]byte
	// crypto/rand.Read never fails and always fills the buffer (Go 1.24+).
	rand.Read(nonce[:])
	aead, err := fileAEAD(k.key, nonce[:saltSize])
	if err != nil {
		return nil, fmt.Errorf("filestore: encrypt: %w", err)
	}
	enc := base64.StdEncoding
	ctLen := len(plain) + aead.Overhead()
	dst := make([]byte, 0, 64+enc.EncodedLen(nonceSize)+enc.EncodedLen(ctLen))
	dst = append(dst, `{"`+envelopeMember+`":"`+envelopeAlg+`","kid":"`...)
	dst = append(dst, k.kid...)
	dst = append(dst, `","nonce":"`...)
	dst = enc.AppendEncode(dst, nonce[:])
	dst = append(dst, `","data":"`...)
	// Encrypt in a scratch buffer, then encode; the ciphertext is never
	// written anywhere but through base64.
	ct := aead.Seal(make([]byte, 0, ctLen), nonce[saltSize:], plain, aad(nameKey))
	dst = enc.AppendEncode(dst, ct)
	return append(dst, `"}`...), nil
}

// envelope is a parsed envelope.
type envelope struct {
	alg   string
	kid   string
	nonce []byte
	data  []byte
}

// errFirstMember stops scanObject after the first member.
var errFirstMember = errors.New("first member seen")

// fileKind is what the start of a session file says it is.
type fileKind int

const (
	notJSON      fileKind = iota // not a JSON object as far as its first member
	plainFile                    // a JSON object whose first member is not envelopeMember
	envelopeFile                 // a JSON object whose first member is envelopeMember
)

// kindOf tells an envelope from a plaintext session file by the first
// member of the object, reading no further than that member; a file that
// is not JSON that far is neither.
func kindOf(b []byte) fileKind {
	k := notJSON
	err := scanObject(b, func(key []byte, escaped bool, _ []byte) error {
		k = plainFile
		if !escaped && string(key) == envelopeMember {
			k = envelopeFile
		}
		return errFirstMember
	})
	if err == nil {
		k = plainFile // {}: an object without members
	}
	return k
}

// isEnvelope reports whether b starts as an envelope.
func isEnvelope(b []byte) bool { return kindOf(b) == envelopeFile }

// parseEnvelope parses b, which isEnvelope accepted. An envelope of another
// construction or version is ErrUndecryptable (a newer version may have
// written it: leave it alone); one of this version that is not exactly its
// four members, with a kid of 8 hex digits, a nonce of 24 bytes and data of
// at least a tag, all in strict standard base64, is ErrEnvelope.
func parseEnvelope(b []byte) (envelope, error) {
	if e, ok := parseCompact(b); ok {
		return e, nil
	}
	return parseGeneral(b)
}

// parseGeneral is parseEnvelope for any JSON layout.
func parseGeneral(b []byte) (envelope, error) {
	var e envelope
	var seen [4]bool
	n := 0
	err := scanObject(b, func(key []byte, escaped bool, val []byte) error {
		s, ok := stringValue(val)
		if escaped || !ok {
			return ErrEnvelope
		}
		i := -1
		switch string(key) {
		case envelopeMember:
			i, e.alg = 0, s
			if n != 0 {
				return ErrEnvelope
			}
			if s != envelopeAlg {
				return fmt.Errorf("%w: unknown format %q", ErrUndecryptable, s)
			}
		case "kid":
			i, e.kid = 1, s
		case "nonce":
			i = 2
		case "data":
			i = 3
		default:
			return ErrEnvelope
		}
		if seen[i] {
			return ErrEnvelope
		}
		seen[i] = true
		n++
		var err error
		switch i {
		case 2:
			e.nonce, err = base64.StdEncoding.Strict().DecodeString(s)
		case 3:
			e.data, err = base64.StdEncoding.Strict().DecodeString(s)
		}
		if err != nil {
			return ErrEnvelope
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrUndecryptable):
		return e, err
	case err != nil:
		return e, ErrEnvelope
	case n != 4, len(e.kid) != kidLen, !isLowerHex(e.kid), len(e.nonce) != nonceSize, len(e.data) < 16:
		return e, ErrEnvelope
	}
	return e, nil
}

// parseCompact parses b if it is an envelope exactly as seal writes it
// (its members in order, no whitespace, no escapes), which is every
// envelope the store made, without a general JSON scan of the ciphertext.
// It reports false for anything else, which parseEnvelope then parses the
// general way: whatever parseCompact accepts, that would accept the same.
func parseCompact(b []byte) (envelope, bool) {
	const (
		head  = `{"` + envelopeMember + `":"` + envelopeAlg + `","kid":"`
		nonce = `","nonce":"`
		data  = `","data":"`
		tail  = `"}`
	)
	nonceLen := base64.StdEncoding.EncodedLen(nonceSize)
	n := len(head) + kidLen + len(nonce) + nonceLen + len(data)
	if len(b) < n+len(tail) || string(b[:len(head)]) != head || string(b[len(b)-len(tail):]) != tail {
		return envelope{}, false
	}
	kid := b[len(head) : len(head)+kidLen]
	i := len(head) + kidLen
	if string(b[i:i+len(nonce)]) != nonce {
		return envelope{}, false
	}
	i += len(nonce)
	nonceText := b[i : i+nonceLen]
	i += nonceLen
	if string(b[i:i+len(data)]) != data {
		return envelope{}, false
	}
	dataText := b[n : len(b)-len(tail)]
	enc := base64.StdEncoding.Strict()
	buf := make([]byte, nonceSize+enc.DecodedLen(len(dataText)))
	if m, err := enc.Decode(buf[:nonceSize], nonceText); err != nil || m != nonceSize {
		return envelope{}, false
	}
	m, err := enc.Decode(buf[nonceSize:], dataText)
	if err != nil || m < 16 || !isLowerHex(string(kid)) {
		return envelope{}, false
	}
	return envelope{alg: envelopeAlg, kid: string(kid), nonce: buf[:nonceSize:nonceSize], data: buf[nonceSize : nonceSize+m]}, true
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// open returns the plaintext of the session file b, whose name key is
// nameKey, and the index in the ring of the key that opened it (-1 for a
// plaintext file, and for one that is not JSON, which is returned as it is
// for decoding to report it corrupt). Errors: ErrPlaintextFile, ErrEncryptedFile,
// ErrUndecryptable (key problems: "not found"), ErrEnvelope (corrupt). The
// plaintext may share b's memory.
func (c *sealer) open(nameKey string, b []byte) ([]byte, int, error) {
	switch kindOf(b) {
	case notJSON:
		// Corrupt whatever the keys: decoding says so and the file is
		// quarantined, as in a plaintext store.
		return b, -1, nil
	case plainFile:
		if c.encrypted() {
			return nil, -1, ErrPlaintextFile
		}
		return b, -1, nil
	}
	if !c.encrypted() {
		return nil, -1, ErrEncryptedFile
	}
	e, err := parseEnvelope(b)
	if err != nil {
		return nil, -1, err
	}
	ad := aad(nameKey)
	// The key the kid names first, then the others: the kid is a hint.
	first := -1
	for i, k := range c.keys {
		if k.kid == e.kid {
			first = i
			break
		}
	}
	// One output buffer for every try, apart from e.data: a failed Open
	// clears its output, which must not be the ciphertext the next try
	// needs.
	out := make([]byte, 0, len(e.data))
	try := func(i int) ([]byte, bool) {
		aead, err := fileAEAD(c.keys[i].key, e.nonce[:saltSize])
		if err != nil {
			return nil, false
		}
		plain, err := aead.Open(out, e.nonce[saltSize:], e.data, ad)
		return plain, err == nil
	}
	if first >= 0 {
		if p, ok := try(first); ok {
			return p, first, nil
		}
	}
	for i := range c.keys {
		if i == first {
			continue
		}
		if p, ok := try(i); ok {
			return p, i, nil
		}
	}
	return nil, -1, fmt.Errorf("%w (kid %s)", ErrUndecryptable, e.kid)
}

// unseal returns the plaintext of the session file b, whose name key is
// nameKey, and the session ID it belongs to: decrypted under
// EncryptionKeys, its __id member checked under HashNames. Errors that
// match filesession.ErrNotFound are key and name problems, to be reported
// as no session and left alone; others (ErrEnvelope) mean the file is
// corrupt.
func (s *Store) unseal(nameKey string, b []byte) ([]byte, string, error) {
	c := s.opts.crypt
	plain, _, err := c.open(nameKey, b)
	if err != nil {
		if errors.Is(err, ErrEnvelope) {
			return nil, "", err
		}
		return nil, "", notFoundBecause(err)
	}
	id := nameKey
	if c.hashNames {
		if id, err = c.checkID(nameKey, plain); err != nil {
			return nil, "", notFoundBecause(err)
		}
	}
	return plain, id, nil
}

// notFoundBecause returns an error that matches filesession.ErrNotFound and
// err (but not ErrCorrupt).
func notFoundBecause(err error) error {
	return fmt.Errorf("%w: %w", filesession.ErrNotFound, err)
}

// readSealed is how read decodes a file it read: unseal, then decode (see
// express.go), with d.id set. A key or name problem is logged (rate
// limited) and returned as an error matching ErrNotFound; the caller must
// not quarantine for it.
func (s *Store) readSealed(nameKey string, b []byte, st *unix.Stat_t, keep bool, d *stored) error {
	plain, id, err := s.unseal(nameKey, b)
	if err != nil {
		if errors.Is(err, filesession.ErrNotFound) {
			s.warnUnusable(nameKey, b, err)
			return fmt.Errorf("filestore: session %s: %w", hashID(nameKey), err)
		}
		return err
	}
	if err := s.decode(plain, st, keep, d); err != nil {
		return err
	}
	d.id = id
	return nil
}

// decodeFile is readSealed without the warning, for the inspection API and
// the user index, which must decide as Load would but log nothing: unseal,
// then decode by the store's rule (see express.go). d.id is set.
func (s *Store) decodeFile(nameKey string, b []byte, st *unix.Stat_t, d *stored) error {
	plain, id, err := s.unseal(nameKey, b)
	if err != nil {
		return err
	}
	if err := s.decode(plain, st, false, d); err != nil {
		return err
	}
	d.id = id
	return nil
}

// sealFile turns the plaintext file of session id into what is written:
// with its __id member under HashNames, encrypted under EncryptionKeys.
func (s *Store) sealFile(id string, plain []byte) ([]byte, error) {
	c := s.opts.crypt
	nameKey := id
	if c.hashNames {
		nameKey = c.hashName(id)
		plain = appendIDMember(plain, id)
	}
	if !c.encrypted() {
		return plain, nil
	}
	return c.seal(nameKey, plain)
}

// warnUnusable logs, at most once a minute per kind of problem, that a
// session file was ignored because of its encryption or name; b is the
// file as read, for its kid.
func (s *Store) warnUnusable(nameKey string, b []byte, err error) {
	var kind, msg string
	switch {
	case errors.Is(err, ErrUndecryptable):
		kind, msg = "undecryptable", "filestore: ignoring a session file that no key of the encryption key ring opens (wrong or dropped key, or tampered with, or moved from another session's file)"
	case errors.Is(err, ErrPlaintextFile):
		kind, msg = "plaintext", "filestore: ignoring a plaintext session file in a store that requires encryption"
	case errors.Is(err, ErrEncryptedFile):
		kind, msg = "encrypted", "filestore: ignoring an encrypted session file in a store that has no encryption keys"
	default:
		kind, msg = "name", "filestore: ignoring a session file whose __id does not match its hashed name"
	}
	ok, suppressed := s.opts.crypt.warn.allow(kind, s.opts.Now())
	if !ok {
		return
	}
	attrs := []any{"session", hashID(nameKey), "cause", err}
	if isEnvelope(b) {
		if e, perr := parseEnvelope(b); perr == nil {
			attrs = append(attrs, "kid", e.kid)
		}
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.log.Warn(msg, attrs...)
}

// warnInterval is how often each kind of warnUnusable is logged at most: a
// wrong key ring makes every request find an unusable file, and the log
// should say so once, not once per request.
const warnInterval = time.Minute

// warnLimiter rate-limits warnings by kind, by the store's clock.
type warnLimiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a warning of kind may be logged at now, and how
// many were suppressed since the last one that was.
func (w *warnLimiter) allow(kind string, now time.Time) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last, w.suppressed = make(map[string]time.Time), make(map[string]int)
	}
	last, seen := w.last[kind]
	// A clock that moved backwards (now before last) also logs.
	if seen && now.Sub(last) < warnInterval && !now.Before(last) {
		w.suppressed[kind]++
		return false, 0
	}
	n := w.suppressed[kind]
	w.last[kind], w.suppressed[kind] = now, 0
	return true, n
}
