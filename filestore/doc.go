// Package filestore is a filesession.Store that keeps each session as one
// JSON file in a directory, in session-file-store's format, so that a Go
// service can take over (or share) a Node.js express-session directory.
//
//	s, err := filestore.Open(filestore.DefaultOptions())
//	if err != nil { ... }
//	defer s.Close()
//
// Files are <Path>/<Prefix><id><Extension>, "sess_<id>.json" by default,
// mode 0600 in a 0700 directory. What the store promises, and how:
//
//   - Atomic writes: every write goes to a temporary file in the same
//     directory, is fsynced (per Options.Sync), and renamed into place, and
//     the directory is fsynced. Readers never see a partial file and take no
//     lock. See write.go for each step and why.
//   - No lost updates: Save and Update re-read the latest version under a
//     per-session lock that holds across goroutines and processes on one
//     host (fixed stripes of one lock file, Linux OFD locks; see lock.go),
//     and rewrite the file keeping the bytes of every member they did not
//     change.
//   - No resurrection: Save, Update, Renew and Touch never create a file;
//     Renew writes the new file before removing the old.
//   - Cheap activity: Touch changes the file's times only (modification
//     time = last access, access time = expiry hint), and the reaper skips
//     files whose hint is in the future without opening them.
//   - Safe names: IDs are checked before any system call; all access goes
//     through a descriptor of the directory with O_NOFOLLOW; symlinks,
//     FIFOs, directories and files of other users where a session should be
//     are reported as "no session" with a warning; corrupt files are moved
//     to <name>.corrupt, never deleted.
//   - Retries only of transient errors (EINTR, EAGAIN, EBUSY, EMFILE,
//     ENFILE); a missing file is one failed open, silently.
//   - Per-user listing without a scan (filesession.UserIndex): the
//     subdirectory .users holds one file per user (named by a salted hash
//     of the user) listing that user's sessions, kept as a superset of the
//     truth and checked on every read, rebuilt by a scan when missing. See
//     userindex.go.
//   - Optional encryption at rest (Options.EncryptionKeys): AES-256-GCM
//     with a key ring that rotates without logging anyone out, each file a
//     JSON envelope bound to its session's name; a file no key opens is
//     "no session" with a warning, never a crash or a quarantine. Optional
//     hashed file names (Options.HashNames) keep IDs out of a directory
//     listing. See encrypt.go, hashnames.go and the README's Encryption at rest section.
//
// The store is for one host with the directory on a local filesystem. It is
// Linux-only (OFD locks, O_NOATIME, utimensat).
package filestore
