package filestore

// Test-only access to the filesystem seam, for package filestore_test.

// FS is the filesystem interface the store makes every call through after
// Open has checked its directory.
type FS = fileSystem

// File is an open file of an FS.
type File = file

// WithFS returns o set so that Open wraps its real filesystem with wrap,
// which tests use to count calls and inject faults.
func WithFS(o Options, wrap func(FS) FS) Options {
	o.wrapFS = wrap
	return o
}

// Stripe exposes the lock stripe of an ID.
func Stripe(id string) int { return stripe(id) }
