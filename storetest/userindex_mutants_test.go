package storetest_test

import (
	"context"
	"sync"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
)

// Mutants of the user cases: memstores with the bugs a per-user index is
// likely to have, each of which the suite must catch.
func init() {
	mutants = append(mutants,
		mutant{"SaveIgnoresUser", "User/SaveSetsKeepsAndClears", func(s *memstore.Store, _ func() time.Time) filesession.Store {
			return saveIgnoresUser{s}
		}},
		mutant{"RenewDropsUser", "User/RenewKeepsUser", func(s *memstore.Store, _ func() time.Time) filesession.Store {
			return renewDropsUser{s}
		}},
		mutant{"IndexOnCreateOnly", "UserIndex/RenewMovesEntry", func(s *memstore.Store, _ func() time.Time) filesession.Store {
			return &indexOnCreate{Store: s}
		}},
		mutant{"IndexListsExpired", "UserIndex/ExpiredNotListed", func(s *memstore.Store, _ func() time.Time) filesession.Store {
			return indexByScan{s, false}
		}},
		mutant{"IndexIgnoresUser", "UserIndex/UsersListedApart", func(s *memstore.Store, now func() time.Time) filesession.Store {
			return indexByScan{s, true}
		}},
	)
}

type saveIgnoresUser struct{ *memstore.Store }

func (s saveIgnoresUser) Save(ctx context.Context, id string, c filesession.Change) error {
	c.User = nil
	return s.Store.Save(ctx, id, c)
}

type renewDropsUser struct{ *memstore.Store }

func (s renewDropsUser) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	if c.User == nil {
		none := ""
		c.User = &none
	}
	return s.Store.Renew(ctx, oldID, newID, c)
}

// indexOnCreate keeps its own index, updated by Create only, and checks
// each entry against the store, as a store that forgot Save and Renew
// would.
type indexOnCreate struct {
	*memstore.Store
	mu    sync.Mutex
	users map[string][]string
}

func (s *indexOnCreate) Create(ctx context.Context, id string, r filesession.Record) error {
	if err := s.Store.Create(ctx, id, r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string][]string{}
	}
	s.users[r.User] = append(s.users[r.User], id)
	return nil
}

func (s *indexOnCreate) UserSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	s.mu.Lock()
	ids := append([]string(nil), s.users[user]...)
	s.mu.Unlock()
	var out []filesession.UserSession
	for _, id := range ids {
		if r, err := s.Load(ctx, id); err == nil && r.User == user {
			out = append(out, filesession.UserSession{ID: id, Record: r})
		}
	}
	return out, nil
}

// indexByScan lists with List, not checking expiry, and if anyUser is set
// not checking the user either (only that there is one).
type indexByScan struct {
	*memstore.Store
	anyUser bool
}

func (s indexByScan) UserSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	var out []filesession.UserSession
	err := s.List(ctx, func(id string, r filesession.Record) error {
		if r.User == user || (s.anyUser && r.User != "" && user != "") {
			out = append(out, filesession.UserSession{ID: id, Record: r})
		}
		return nil
	})
	return out, err
}
