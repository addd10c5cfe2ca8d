package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// Fuzzing the stored format, the one input of the store that anyone with
// write access to the directory (a Node process, an operator's editor, a
// disk that went bad) controls. The seed corpora are in
// testdata/fuzz/<FuzzName>/ (seed-*: session files as they occur, ours,
// Node's, hand-edited and broken ones); scripts/fuzz.sh runs every fuzz
// target of the module for a while, and whatever it finds is committed
// there (regression-*), where plain `go test` replays it.

// fuzzStore is a store value with default options, enough for encoding.
func fuzzStore(t testing.TB) *Store {
	o, err := Options{Path: t.TempDir()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &Store{opts: o}
}

// FuzzDecodeRecord checks decodeRecord, the session file parser:
//
//   - it accepts exactly the files that are JSON objects (encoding/json is
//     the reference), and never panics;
//   - what it accepts is a record a store can use: every value valid JSON,
//     no reserved key among the values, a positive idle timeout;
//   - rewriting it (as a Save with no change does) gives a file that
//     decodes to the same record, and rewriting that gives the same bytes:
//     the rewrite keeps what it does not change;
//   - a new file for the same record (as Create writes it) decodes to the
//     same values too.
func FuzzDecodeRecord(f *testing.F) {
	s := fuzzStore(f)
	mtime := time.UnixMilli(1796292220850).Add(123 * time.Microsecond)
	f.Fuzz(func(t *testing.T, b []byte) {
		var d stored
		err := decodeRecord(b, mtime, s.opts.TTL, true, &d)
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		isObject := json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{'
		if (err == nil) != isObject {
			t.Fatalf("decodeRecord(%q) = %v, but it is a JSON object: %v", b, err, isObject)
		}
		if err != nil {
			return
		}
		r := d.rec
		for k, v := range r.Values {
			if reservedKey(k) {
				t.Fatalf("reserved key %q among the values of %q", k, b)
			}
			if !json.Valid(v) {
				t.Fatalf("value %q of %q is not JSON", v, k)
			}
		}
		if r.IdleTimeout <= 0 {
			t.Fatalf("idle timeout %v from %q", r.IdleTimeout, b)
		}
		if r.LastAccess.Before(mtime) {
			t.Fatalf("LastAccess %v before the file's mtime %v", r.LastAccess, mtime)
		}

		// The rewrite of an unchanged record.
		n := r.Clone()
		out, err := s.encodeRecord(nil, &d, &n, false)
		if err != nil {
			t.Fatalf("re-encoding %q: %v", b, err)
		}
		var d2 stored
		if err := decodeRecord(out, mtime, s.opts.TTL, true, &d2); err != nil {
			t.Fatalf("the rewrite of %q does not decode: %v\n%s", b, err, out)
		}
		sameRecord(t, "rewrite", b, out, &r, &d2.rec)
		n2 := d2.rec.Clone()
		out2, err := s.encodeRecord(nil, &d2, &n2, false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("rewriting is not stable:\n%s\n%s", out, out2)
		}

		// A new file of the same record.
		n3 := r.Clone()
		fresh, err := s.encodeRecord(nil, nil, &n3, false)
		if err != nil {
			t.Fatalf("encoding %q as a new file: %v", b, err)
		}
		var d3 stored
		if err := decodeRecord(fresh, mtime, s.opts.TTL, false, &d3); err != nil {
			t.Fatalf("the new file for %q does not decode: %v\n%s", b, err, fresh)
		}
		for k, v := range r.Values {
			var want bytes.Buffer
			json.Compact(&want, v)
			if !bytes.Equal(d3.rec.Values[k], want.Bytes()) {
				t.Fatalf("new file: value %q = %s, want %s", k, d3.rec.Values[k], want.Bytes())
			}
		}
		if len(d3.rec.Values) != len(r.Values) {
			t.Fatalf("new file: %d values, want %d", len(d3.rec.Values), len(r.Values))
		}
	})
}

// sameRecord fails unless a and b are the same record as far as a file can
// tell (times in whole milliseconds).
func sameRecord(t *testing.T, what string, in, out []byte, a, b *filesession.Record) {
	t.Helper()
	var diffs []string
	if len(a.Values) != len(b.Values) {
		diffs = append(diffs, "number of values")
	}
	for k, v := range a.Values {
		if !bytes.Equal(v, b.Values[k]) {
			diffs = append(diffs, "value "+k)
		}
	}
	if a.IdleTimeout != b.IdleTimeout {
		diffs = append(diffs, "idle timeout")
	}
	if !a.LastAccess.Equal(b.LastAccess) {
		diffs = append(diffs, "last access "+a.LastAccess.String()+" "+b.LastAccess.String())
	}
	if a.Deadline.UnixMilli() != b.Deadline.UnixMilli() {
		diffs = append(diffs, "deadline")
	}
	if a.Created.UnixMilli() != b.Created.UnixMilli() {
		diffs = append(diffs, "created")
	}
	if a.Cookie != b.Cookie {
		diffs = append(diffs, "cookie")
	}
	if len(diffs) > 0 {
		t.Fatalf("%s of %q changed %s:\n%s", what, in, strings.Join(diffs, ", "), out)
	}
}

// FuzzSessionFile puts arbitrary bytes where a session file is and uses the
// store on it, as a request would: Load either returns the record the
// parser makes of it or reports "not found" (quarantining what does not
// decode, never deleting it), never another error; a Save of a loaded
// session keeps every value it does not change and is loaded back.
func FuzzSessionFile(f *testing.F) {
	now := time.UnixMilli(1796292220850)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		s, err := Open(Options{Path: dir, Sync: SyncNone, Now: func() time.Time { return now }, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		id := filesession.NewID()
		name := dir + "/sess_" + id + ".json"
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// The file is as old as its own __lastAccess at most: now.
		if err := os.Chtimes(name, now, now); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		r, err := s.Load(ctx, id)
		var d stored
		parsed := decodeRecord(b, now, s.opts.TTL, false, &d) == nil
		switch {
		case err != nil && !errors.Is(err, filesession.ErrNotFound):
			t.Fatalf("Load of %q: %v, a store error", b, err)
		case !parsed:
			if !errors.Is(err, filesession.ErrCorrupt) {
				t.Fatalf("Load of the undecodable %q: %v, want ErrCorrupt", b, err)
			}
			if got, rerr := os.ReadFile(name + ".corrupt"); rerr != nil || !bytes.Equal(got, b) {
				t.Fatalf("the corrupt file was not quarantined intact: %v", rerr)
			}
			return
		case err != nil:
			if !d.rec.Expired(now) {
				t.Fatalf("Load of the live %q: %v", b, err)
			}
			return
		}
		for k, v := range d.rec.Values {
			if !bytes.Equal(r.Values[k], v) {
				t.Fatalf("Load of %q: value %q = %s, want %s", b, k, r.Values[k], v)
			}
		}
		c := filesession.Change{Set: map[string]json.RawMessage{"fuzz": json.RawMessage(`"set"`)}, At: now}
		if err := s.Save(ctx, id, c); err != nil {
			t.Fatalf("Save of the loaded %q: %v", b, err)
		}
		r2, err := s.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load after Save of %q: %v", b, err)
		}
		if string(r2.Values["fuzz"]) != `"set"` || len(r2.Values) != len(r.Values)+btoi(r.Values["fuzz"] == nil) {
			t.Fatalf("Save of %q: values %v, then %v", b, r.Values, r2.Values)
		}
		for k, v := range r.Values {
			if k != "fuzz" && !bytes.Equal(r2.Values[k], v) {
				t.Fatalf("Save of %q changed %q: %s, then %s", b, k, v, r2.Values[k])
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

var discard = slog.New(slog.DiscardHandler)
