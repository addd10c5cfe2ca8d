package filestore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/filesession/filesession"
)

// SyncMode says how much of a write is made durable before the write
// returns. Every mode is atomic: a reader, a process crash or a power loss
// never leaves a half-written session file behind, because the file is
// written under a temporary name and renamed into place. The modes differ in
// which writes a power loss (or kernel crash) may undo.
type SyncMode int

const (
	// SyncFull, the default, fsyncs the new file before renaming it and
	// fsyncs the directory after the rename (and after an unlink). A write
	// that returned nil survives a power loss. It costs two fsyncs per write.
	SyncFull SyncMode = iota

	// SyncFile fsyncs the new file but not the directory, which is what
	// google/renameio and write-file-atomic do. After a power loss a session
	// file is always either its old or its new version, never empty or
	// torn, but the last renames (and deletes) may be undone: a save may be
	// lost, a deleted or renewed-away session may come back. One fsync per
	// write.
	SyncFile

	// SyncNone never fsyncs. Writes are still atomic against concurrent
	// readers and process crashes (kill -9), since the page cache survives
	// those, but after a power loss recent session files may be empty or
	// missing. Use it for tests, tmpfs, or sessions you can afford to lose.
	SyncNone
)

// String returns the mode's name as written in this package.
func (m SyncMode) String() string {
	switch m {
	case SyncFull:
		return "SyncFull"
	case SyncFile:
		return "SyncFile"
	case SyncNone:
		return "SyncNone"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Defaults of Options fields left at their zero value.
const (
	// DefaultPath is the session directory when Options.Path is empty,
	// relative to the working directory like session-file-store's path.
	DefaultPath = "./sessions"
	// DefaultTTL is the idle timeout of records that carry none.
	DefaultTTL = 24 * time.Hour
	// DefaultPrefix is the file name prefix when Prefix is empty and
	// NoPrefix is false.
	DefaultPrefix = "sess_"
	// DefaultExtension is the file name suffix when Extension is empty.
	DefaultExtension = ".json"
	// DefaultLockTimeout bounds every wait for a session's lock.
	DefaultLockTimeout = 5 * time.Second
	// DefaultMaxSize is the largest encoded session file, 1 MiB.
	DefaultMaxSize = 1 << 20
)

// Options configure a Store. The zero value is usable: every zero field takes
// the default stated on it, except that Retries and ReapInterval are off
// when zero (DefaultOptions turns them on).
//
// How session-file-store's options map onto these:
//
//   - path → Path (default "./sessions" in both). We create it 0700, not
//     0755, and refuse one that is a symlink, not ours, or writable by others.
//   - ttl (seconds, default 3600) → TTL (a time.Duration, default 24h). Like
//     ttl, it is used only for records whose cookie.originalMaxAge is
//     null, 0 or missing.
//   - retries (default 5) → Retries (DefaultOptions: 3). session-file-store
//     retries every read error, ENOENT included, and logs each retry, which
//     turns every unknown session ID into a delay and a log flood. We retry
//     only transient errors (EINTR, EAGAIN, EBUSY, EMFILE, ENFILE), of reads
//     and writes alike, and never ENOENT.
//   - reapInterval (seconds, default 3600, -1 disables) → ReapInterval
//     (DefaultOptions: 1h; zero or negative disables).
//   - reapAsync → always on: the reaper is a goroutine of this process, so
//     it never blocks a request, and it needs no child process or node
//     binary on PATH.
//   - fileExtension (default ".json") → Extension (default ".json").
//     session-file-store has no prefix; set NoPrefix to get its file names.
//   - secret/crypto (encryption) → EncryptionKeys: AES-256-GCM with a key
//     ring instead of a passphrase, in a format of its own (Node cannot
//     read it, so it excludes NodeCompatible); a wrong key is "no session"
//     and a warning, not a crash.
//   - encoder/decoder, fallbackSessionFn, logFn → none; logging goes to
//     Logger.
type Options struct {
	// Path is the session directory. Default "./sessions". If it does not
	// exist, Open creates it (and its parents) with mode 0700. Open refuses
	// a Path that is a symlink, not a directory, not owned by the effective
	// user, or writable by group or others.
	Path string

	// TTL is the idle timeout of records that carry none (a zero
	// IdleTimeout, or a file whose cookie.originalMaxAge is null, 0 or
	// missing). Zero means DefaultTTL (24h); negative is an error. TTL()
	// returns it.
	TTL time.Duration

	// Retries is how many times a filesystem operation that failed with a
	// transient error (EINTR, EAGAIN, EBUSY, EMFILE, ENFILE) is retried,
	// with a backoff of 5ms·2^i that honours the context. Zero or negative
	// means no retries; DefaultOptions has 3. Other errors (ENOENT,
	// ENOSPC, EDQUOT, EIO, EACCES, EPERM, EROFS, ...) are never retried.
	Retries int

	// ReapInterval is how often a background goroutine removes expired
	// sessions and stale temporary files. The first pass runs a second
	// after Open, then one every interval. Zero or negative disables the
	// goroutine (call Reap yourself); DefaultOptions has 1h.
	ReapInterval time.Duration

	// Prefix starts every session file name: <Path>/<Prefix><id><Extension>.
	// Empty means DefaultPrefix ("sess_"), unless NoPrefix is set. It must
	// not contain '/' or NUL, nor start with '.', which marks this store's
	// own hidden files.
	Prefix string

	// NoPrefix makes file names start with the ID itself, as
	// session-file-store's do; Prefix must then be empty.
	NoPrefix bool

	// Extension ends every session file name. Empty means
	// DefaultExtension (".json"). It must not contain '/' or NUL.
	Extension string

	// IDLength is the exact length of the IDs the store accepts (see
	// filesession.ValidID). Zero means filesession.IDLength (43);
	// express-session's IDs are 32.
	IDLength int

	// NodeCompatible makes the store a partner of a running Node.js
	// session-file-store (1.5) on the same directory, which decides expiry
	// from the __lastAccess member alone: __lastAccess +
	// (cookie.originalMaxAge || ttl) < now. ExpressOptions sets it; see
	// express.go for everything the preset does. Under it:
	//
	//   - Touch rewrites the file (under the session's lock, atomically)
	//     with only __lastAccess changed, every other byte kept, instead of
	//     setting the file's times: Node never looks at them.
	//   - A record's LastAccess is its __lastAccess exactly; the file's
	//     modification time stands in only for a file without a numeric
	//     __lastAccess, which Node would never expire and this store expires
	//     TTL (or originalMaxAge) after the file was last written.
	//   - No __created member is added to a file that lacks one (Node's),
	//     so a file Node wrote and this store rewrote unchanged differs only
	//     in __lastAccess.
	//
	// Default false.
	NodeCompatible bool

	// Sync says which fsyncs a write makes; the zero value is SyncFull.
	// See SyncMode for the trade-off.
	Sync SyncMode

	// LockTimeout bounds the wait for a session's lock; a context deadline
	// that comes first wins. A wait that runs out fails with an error
	// matching filesession.ErrLockTimeout. Zero or negative means
	// DefaultLockTimeout (5s).
	LockTimeout time.Duration

	// MaxSize is the largest encoded session file in bytes. A write of a
	// bigger record fails with an error matching filesession.ErrTooLarge and
	// writes nothing; a bigger file found on disk is treated as corrupt.
	// Zero or negative means DefaultMaxSize (1 MiB).
	MaxSize int

	// Logger receives warnings (symlinks or foreign files where a session
	// should be, corrupt files, retries, reaper errors). Session IDs never
	// appear in it, only a short hash. Nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock for every expiry decision and for timestamps the
	// store fills in. Nil means time.Now. Lock timeouts and retry backoff
	// always use the real clock.
	Now func() time.Time

	// Events, if not nil, is told of retries, lock waits, quarantines and
	// reaper passes, for metrics (package metrics implements it). Its
	// methods are called synchronously, sometimes under a session's lock,
	// so they must be cheap; see filesession.StoreEvents.
	Events filesession.StoreEvents

	// EncryptionKeys, if not empty, makes the store encrypt every session
	// file it writes with AES-256-GCM, under a key derived for each write
	// from the first key of the ring, and decrypt with whichever key of the
	// ring opens a file: put a new key first and keep the old ones after it
	// to rotate keys without logging anyone out (Rekey finishes a rotation
	// at once). Each key must be exactly KeySize (32) bytes from a
	// cryptographic random source; Open refuses any other length, a key of
	// zero bytes, the same key twice, and NodeCompatible. Files stay JSON,
	// an envelope with the ciphertext, bound to the session's ID so that
	// contents moved onto another session's file fail. A file that no key
	// opens (wrong key, tampered, moved), a plaintext file, or (without
	// keys) an envelope is reported as not found with a warning and left as
	// it is, never quarantined. See encrypt.go and the README's Encryption at rest section.
	// Default nil: plaintext files. The store keeps its own copy.
	EncryptionKeys [][]byte

	// HashNames names each session file by a hash of its ID,
	// <Prefix><hash><Extension>, the hash IDLength characters of the ID
	// alphabet, so that a listing of the directory reveals no session ID.
	// The ID is kept inside the file instead (a reserved "__id" member,
	// encrypted under EncryptionKeys), which List reports and every read
	// checks against the name. The price: an operator can no longer cat
	// sessions/sess_<id>.json; the filesession command's show computes the
	// name. Open refuses it with NodeCompatible or an IDLength under 22.
	// Turning it on or off orphans the sessions already in the directory.
	// See hashnames.go. Default false.
	HashNames bool

	// NameKey, if set, keys the HashNames hash (HMAC-SHA-256), so that
	// someone who holds an ID from elsewhere cannot tell from a directory
	// listing whether its session still exists. It must be at least 16
	// random bytes, and requires HashNames. It is never rotated: changing
	// it orphans every session. Default nil: an unkeyed SHA-256, which is
	// enough to hide the IDs themselves.
	NameKey []byte

	// crypt is what EncryptionKeys, HashNames and NameKey make; set by
	// withDefaults (encrypt.go).
	crypt *sealer

	// wrapFS, when set (only by tests, through export_test.go), wraps the
	// filesystem the store uses, to count or fail its calls.
	wrapFS func(fileSystem) fileSystem
}

// DefaultOptions returns the options of session-file-store as the reference
// configuration uses it: Path "./sessions", TTL 24h, Retries 3,
// ReapInterval 1h, and every other field at its default.
func DefaultOptions() Options {
	return Options{
		Path:         DefaultPath,
		TTL:          DefaultTTL,
		Retries:      3,
		ReapInterval: time.Hour,
	}
}

// withDefaults returns o with every zero field replaced by its default, or
// an error for a setting that cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	switch {
	case o.TTL < 0:
		return o, fmt.Errorf("filestore: negative TTL %v", o.TTL)
	case o.TTL == 0:
		o.TTL = DefaultTTL
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	switch {
	case o.NoPrefix && o.Prefix != "":
		return o, errors.New("filestore: NoPrefix is set but Prefix is not empty")
	case o.NoPrefix:
	case o.Prefix == "":
		o.Prefix = DefaultPrefix
	}
	if strings.HasPrefix(o.Prefix, ".") {
		// Names starting with '.' are the store's own: the lock file and
		// temporary files. Keeping sessions out of that space is what lets
		// the reaper and List tell them apart by name alone.
		return o, fmt.Errorf("filestore: Prefix %q starts with '.', which is reserved for the store's own files", o.Prefix)
	}
	if o.Extension == "" {
		o.Extension = DefaultExtension
	}
	for _, s := range []string{o.Prefix, o.Extension} {
		if strings.ContainsAny(s, "/\x00") {
			return o, fmt.Errorf("filestore: file name part %q contains '/' or NUL", s)
		}
	}
	if strings.HasSuffix(o.Extension, tempSuffix) || strings.HasSuffix(o.Extension, corruptSuffix) {
		return o, fmt.Errorf("filestore: Extension %q ends like the store's temporary or quarantined files", o.Extension)
	}
	if o.IDLength == 0 {
		o.IDLength = filesession.IDLength
	}
	if o.IDLength < 0 || o.IDLength > 200 {
		// 200 keeps <prefix><id><extension> and its temp name well under
		// NAME_MAX (255) for any sane prefix and extension.
		return o, fmt.Errorf("filestore: IDLength %d out of range", o.IDLength)
	}
	if n := len(o.Prefix) + o.IDLength + len(o.Extension) + len(".") + 17 + len(tempSuffix) + len(corruptSuffix); n > 255 {
		return o, fmt.Errorf("filestore: file names would be %d bytes long, over the 255 filesystems allow", n)
	}
	switch o.Sync {
	case SyncFull, SyncFile, SyncNone:
	default:
		return o, fmt.Errorf("filestore: unknown %v", o.Sync)
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	crypt, err := newSealer(&o)
	if err != nil {
		return o, err
	}
	o.crypt = crypt
	return o, nil
}
