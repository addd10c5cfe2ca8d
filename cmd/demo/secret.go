package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/filesession/filesession"
)

// secretFileName is the file in the session directory that keeps the
// generated signing secret. It starts with '.', the file store's space for
// its own files, so no tool mistakes it for a session.
const secretFileName = ".filesession-secret"

// generatedSecretBytes is the size of a generated secret: the HMAC-SHA256 key
// size, filesession.MinSecretLength.
const generatedSecretBytes = filesession.MinSecretLength

// loadOrCreateSecret returns the signing secret kept in dir, generating and
// storing it on first use. Keeping it is what makes cookies (and so logins
// and CSRF tokens) survive a restart without the operator configuring a
// secret. The file holds the secret in hex, mode 0600.
func loadOrCreateSecret(dir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dir, secretFileName)
	secret, err := readSecret(path, log)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	if err := createSecret(dir, path); err != nil {
		return nil, err
	}
	// Read back what is on disk rather than returning what was generated:
	// another process may have won the race to create the file.
	if secret, err = readSecret(path, log); err != nil {
		return nil, err
	}
	log.Info("demo: generated a signing secret; keep it to keep sessions valid", "file", path)
	return secret, nil
}

// createSecret writes a new random secret to path unless a file is already
// there. The secret is written in full under a temporary name and then
// hard-linked into place: link, unlike rename, never replaces an existing
// file, so two processes starting together agree on one secret, and no
// reader ever sees a partial file.
func createSecret(dir, path string) error {
	b := make([]byte, generatedSecretBytes)
	rand.Read(b)
	tmp, err := os.CreateTemp(dir, secretFileName+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("creating signing secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(b) + "\n")
	if err == nil {
		// Durable before it is visible: a secret lost to a power cut
		// after cookies were signed with it would log everyone out.
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing signing secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("storing signing secret: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the new directory entry durable too (best effort: some
		// platforms cannot sync a directory).
		d.Sync()
		d.Close()
	}
	return nil
}

// readSecret reads the hex secret at path. A missing file gives an error
// matching fs.ErrNotExist; anything else that is not a regular file of
// exactly the expected hex is refused with an error saying what to do,
// rather than replaced, since replacing it would log everyone out.
func readSecret(path string, log *slog.Logger) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("signing secret %s is not a regular file (%v); remove it to generate a new one", path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("demo: signing secret file is accessible to other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading signing secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) != generatedSecretBytes {
		return nil, fmt.Errorf("signing secret %s is malformed (want %d hex characters); fix it, or remove it to generate a new one (which logs everyone out)", path, 2*generatedSecretBytes)
	}
	return secret, nil
}
