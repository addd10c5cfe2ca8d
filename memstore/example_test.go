package memstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
)

func Example() {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()

	id := filesession.NewID()
	now := time.Now()
	err := s.Create(ctx, id, filesession.Record{
		Values:      map[string]json.RawMessage{"user": json.RawMessage(`"alice"`)},
		Created:     now,
		LastAccess:  now,
		IdleTimeout: 30 * time.Minute,
	})
	if err != nil {
		panic(err)
	}

	// Saves merge into the latest version rather than overwrite it.
	err = s.Save(ctx, id, filesession.Change{
		Set: map[string]json.RawMessage{"theme": json.RawMessage(`"dark"`)},
		At:  time.Now(),
	})
	if err != nil {
		panic(err)
	}

	r, err := s.Load(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(r.Values["user"]), string(r.Values["theme"]))

	_ = s.Delete(ctx, id)
	_, err = s.Load(ctx, id)
	fmt.Println(err)
	// Output:
	// "alice" "dark"
	// memstore: filesession: session not found
}
