package filestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// RekeyOptions configure Rekey.
type RekeyOptions struct {
	// Plaintext makes Rekey encrypt plaintext session files too, which the
	// store otherwise refuses to read (ErrPlaintextFile): set it once, to
	// migrate a directory of plaintext sessions to encryption without
	// logging anyone out. Only files that decode as sessions are
	// encrypted, and under HashNames only those whose __id matches their
	// name. Default false: plaintext files are skipped.
	Plaintext bool
}

// RekeyResult counts what Rekey did with the session files it examined.
type RekeyResult struct {
	// Rewritten is how many files were re-encrypted with the first key
	// of the ring (or encrypted, under RekeyOptions.Plaintext).
	Rewritten int
	// Current is how many were encrypted with the first key already.
	Current int
	// Skipped is how many were left as they were: files no key of the
	// ring opens (ErrUndecryptable), plaintext files without
	// RekeyOptions.Plaintext, files whose name does not match their __id,
	// corrupt files (Load and the reaper quarantine those), things that
	// are not regular files of this user, and files Rekey failed to
	// rewrite (their errors are logged, and the first one returned).
	Skipped int
}

// Rekey rewrites, each under its session's lock and atomically like any
// write, every session file that is encrypted with a key other than the
// first of Options.EncryptionKeys, so that the others can be dropped from
// the ring. It changes nothing else: the plaintext is kept byte for byte,
// and so are the file's times (the last access and the expiry hint), so an
// expired session stays expired and a live one keeps its expiry. Sessions
// created or saved while it runs are written with the first key anyway.
//
// Without Rekey a rotation completes by itself as sessions are saved, but
// a session that is only read or touched keeps its old key (Touch never
// rewrites a file), so the old key must stay in the ring for as long as a
// session may live; see the README's Encryption at rest section for the steps.
//
// Errors with single files are logged, counted as skipped, and the pass
// goes on; Rekey returns the first of them. A cancelled ctx stops the
// pass. Rekey fails at once on a store without EncryptionKeys.
func (s *Store) Rekey(ctx context.Context, opts RekeyOptions) (RekeyResult, error) {
	var res RekeyResult
	if !s.opts.crypt.encrypted() {
		return res, errors.New("filestore: Rekey needs EncryptionKeys")
	}
	var first error
	err := s.walk(ctx, func(name string) error {
		key, ok := s.sessionID(name)
		if !ok {
			return nil
		}
		outcome, err := s.rekeyFile(ctx, key, name, opts)
		switch outcome {
		case rekeyRewritten:
			res.Rewritten++
		case rekeyCurrent:
			res.Current++
		case rekeySkipped:
			res.Skipped++
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrClosed), ctx.Err() != nil:
			return err
		default:
			s.log.Warn("filestore: rekey skipped a session file", "session", hashID(key), "error", err)
			if first == nil {
				first = err
			}
		}
		return nil
	})
	s.log.Info("filestore: rekey pass done", "rewritten", res.Rewritten, "current", res.Current, "skipped", res.Skipped)
	if err != nil {
		return res, err
	}
	return res, first
}

type rekeyOutcome int

const (
	rekeyGone rekeyOutcome = iota // removed meanwhile: not counted
	rekeyRewritten
	rekeyCurrent
	rekeySkipped
)

// rekeyFile is Rekey of one session file, name, of name key key.
func (s *Store) rekeyFile(ctx context.Context, key, name string, opts RekeyOptions) (rekeyOutcome, error) {
	if err := s.begin(ctx, key); err != nil {
		return rekeyGone, err
	}
	defer s.mu.RUnlock()
	p, err := s.lock(ctx, key, "")
	if err != nil {
		return rekeySkipped, err
	}
	defer s.unlock(p)
	var st unix.Stat_t
	var b []byte
	err = s.retry(ctx, key, "read", func() error {
		var err error
		b, err = s.readFile(name, &st)
		return err
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return rekeyGone, nil
	case errors.Is(err, errSymlink), errors.Is(err, errNotRegular), errors.Is(err, errForeign), errors.Is(err, errWritable), errors.Is(err, errOversize):
		return rekeySkipped, nil
	case err != nil:
		return rekeySkipped, fmt.Errorf("filestore: rekey session %s: %w", hashID(key), err)
	}

	c := s.opts.crypt
	plain, idx, err := c.open(key, b)
	switch {
	case err == nil:
	case errors.Is(err, ErrPlaintextFile) && opts.Plaintext:
		plain = b
	default:
		return rekeySkipped, nil
	}
	if c.hashNames {
		if _, err := c.checkID(key, plain); err != nil {
			return rekeySkipped, nil
		}
	}
	if idx == 0 {
		return rekeyCurrent, nil
	}
	// Never encrypt what is not a session: a corrupt plaintext file must
	// stay corrupt, for the store to quarantine it.
	var d stored
	if err := decodeRecord(plain, timeOf(st.Mtim), s.opts.TTL, false, &d); err != nil {
		return rekeySkipped, nil
	}
	data, err := c.seal(key, plain)
	if err != nil {
		return rekeySkipped, err
	}
	if len(data) > s.opts.MaxSize {
		return rekeySkipped, fmt.Errorf("filestore: rekey session %s: %w: %d bytes encrypted, MaxSize is %d", hashID(key), filesession.ErrTooLarge, len(data), s.opts.MaxSize)
	}
	// The file's own times, so that neither its expiry hint nor its last
	// access moves; the hint cache still holds the right expiry.
	if err := s.writeFile(ctx, key, name, data, timeOf(st.Atim), timeOf(st.Mtim), true); err != nil {
		return rekeySkipped, err
	}
	return rekeyRewritten, nil
}
