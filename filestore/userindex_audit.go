package filestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// UserIndexComplete reports whether the per-user index directory exists and
// is complete (its marker matches its salt). An incomplete index is not an
// error for the store, which rebuilds it on first use (UserSessions) or
// through RebuildUserIndex; operator tools report it. It only reads.
func (s *Store) UserIndexComplete(ctx context.Context) (bool, error) {
	return s.userIndexComplete(ctx)
}

// UserIndexed reports whether the per-user index lists session id under
// user, reading only: no lock is taken, nothing is rebuilt or pruned. A
// session that names a user but is not listed is what makes an index "out
// of date"; the store's write order (index first, session file second)
// never leaves one, so finding one means the index was damaged or removed
// by hand. A missing index directory lists nothing.
func (s *Store) UserIndexed(ctx context.Context, id, user string) (bool, error) {
	if err := s.begin(ctx, id); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	key := s.nameKey(id)
	d, err := s.openUserDir(false)
	if errors.Is(err, errNoUserDir) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("filestore: user index: %w", err)
	}
	defer d.Close()
	keys, err := s.readKeys(d, d.fileOf(user))
	if err != nil {
		return false, fmt.Errorf("filestore: user index: %w", err)
	}
	return slices.Contains(keys, key), nil
}
