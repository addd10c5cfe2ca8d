package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// roundTripValues are values whose bytes a store must keep exactly. Each is
// compact JSON, so a store that embeds the raw bytes in a JSON document
// (the file store) has nothing to compact; what it must not do is escape
// <, > and & or U+2028 (json.Marshal's default), sort object keys (decoding
// into a map), or go through float64 (losing 2^53+1).
var roundTripValues = map[string]string{
	"ascii":          `"hello"`,
	"unicode":        `"héllo wörld ✓ 日本語 🎉"`,
	"quotes":         `"say \"hi\" \\ back\\slash\n\ttab"`,
	"html":           `"<script>alert('x')</script> & <b>"`,
	"lineSeparators": "\"a\u2028b\u2029c\"",
	"escapes":        `"\u0000\u001f\u00e9\ud83c\udf89"`,
	"emptyString":    `""`,
	"nested":         `{"z":{"b":[1,2,{"c":null}],"a":"x"},"d":"e"}`,
	"array":          `[1,"two",3.5,true,null,[],{}]`,
	"emptyObject":    `{}`,
	"emptyArray":     `[]`,
	"int":            `42`,
	"negative":       `-7`,
	"zero":           `0`,
	"float":          `3.14159`,
	"exponent":       `6.02e+23`,
	"beyondFloat64":  `9007199254740993`,
	"bigNegative":    `-123456789012345678901234567890`,
	"true":           `true`,
	"false":          `false`,
	"null":           `null`,
	// Key names a file name, a Redis field or a JSON object must not mangle.
	"ключ 🔑":     `1`,
	"dotted.key": `2`,
	"with space": `3`,
	"slash/key":  `4`,
	`quote"key`:  `5`,
	"<tag>&amp;": `6`,
	"$dollar":    `7`,
	"UPPER":      `8`,
	"upper":      `9`,
	"long":       `"` + strings.Repeat("0123456789abcdef", 128) + `"`,
}

func roundTripRecord(e *env) filesession.Record {
	now := e.clock.Now()
	v := make(map[string]json.RawMessage, len(roundTripValues))
	for k, s := range roundTripValues {
		v[k] = json.RawMessage(s)
	}
	return filesession.Record{
		Values:      v,
		Created:     now.Add(-5 * time.Minute), // distinct from LastAccess
		LastAccess:  now,
		IdleTimeout: 45 * time.Minute,
		Deadline:    now.Add(2*time.Hour + 123*ms), // not on a second boundary
		Cookie: filesession.CookieAttrs{
			Secure: true, HTTPOnly: true, Path: "/app", Domain: "example.com", SameSite: "strict",
		},
	}
}

func testRoundTrip(t *testing.T, su *suite) {
	su.run(t, "AllValueKinds", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		e.wantRecord(id, want)
	})

	su.run(t, "NoValues", func(e *env) {
		want := e.record(nil)
		id := e.create(want)
		e.wantRecord(id, want)
	})

	su.run(t, "NoDeadline", func(e *env) {
		want := e.record(vals("a", "1"))
		id := e.create(want)
		if got := e.load(id); !got.Deadline.IsZero() {
			e.t.Errorf("Deadline = %s, want the zero Time (no deadline)", fmtTime(got.Deadline))
		}
	})

	for _, c := range []struct {
		name   string
		cookie filesession.CookieAttrs
	}{
		{"Zero", filesession.CookieAttrs{}},
		{"Lax", filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"}},
		{"Strict", filesession.CookieAttrs{Secure: true, Path: "/a/b", SameSite: "strict"}},
		{"None", filesession.CookieAttrs{Secure: true, HTTPOnly: true, Domain: ".example.org", SameSite: "none"}},
		{"NoSameSite", filesession.CookieAttrs{Secure: true, HTTPOnly: true, Path: "/", Domain: "example.org"}},
	} {
		su.run(t, "Cookie"+c.name, func(e *env) {
			want := e.record(vals("a", "1"))
			want.Cookie = c.cookie
			id := e.create(want)
			e.wantRecord(id, want)
		})
	}

	su.run(t, "DefaultIdleTimeout", func(e *env) {
		r := e.record(vals("a", "1"))
		r.IdleTimeout = 0
		id := e.create(r)
		got := e.load(id)
		if got.IdleTimeout <= 0 {
			e.t.Errorf("IdleTimeout = %v, want the store's default (> 0) for a record created without one", got.IdleTimeout)
		}
		if tt, ok := e.s.(filesession.TTLer); ok && got.IdleTimeout != tt.TTL() {
			e.t.Errorf("IdleTimeout = %v, want the store's TTL() %v", got.IdleTimeout, tt.TTL())
		}
	})

	su.run(t, "LoadDoesNotTouch", func(e *env) {
		want := e.record(vals("a", "1"))
		id := e.create(want)
		e.clock.Advance(10 * time.Minute)
		e.load(id)
		e.wantRecord(id, want)
	})

	su.run(t, "LoadReturnsCopy", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want.Clone())
		got := e.load(id)
		got.Values["ascii"][1] = 'X'
		got.Values["added"] = json.RawMessage(`1`)
		delete(got.Values, "int")
		got.Cookie.Path = "/changed"
		e.wantRecord(id, want)
	})

	su.run(t, "CreateCopiesInput", func(e *env) {
		in := roundTripRecord(e)
		want := in.Clone()
		id := e.create(in)
		in.Values["ascii"][1] = 'X'
		in.Values["added"] = json.RawMessage(`1`)
		delete(in.Values, "int")
		e.wantRecord(id, want)
	})

	su.run(t, "SaveCopiesChange", func(e *env) {
		id, _ := e.createValues("a", "1")
		set := vals("b", `"bee"`)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: set, At: e.clock.Now()}))
		set["b"][1] = 'X'
		set["c"] = json.RawMessage(`3`)
		e.wantValues(id, "a", "1", "b", `"bee"`)
	})
}

func testCreate(t *testing.T, su *suite) {
	su.run(t, "ExistingID", func(e *env) {
		want := e.record(vals("orig", `"yes"`))
		id := e.create(want)
		other := e.record(vals("other", `"no"`))
		other.IdleTimeout = time.Hour
		e.wantErr("Create on an existing ID", e.s.Create(e.ctx, id, other), filesession.ErrExists)
		e.wantRecord(id, want)
	})

	su.run(t, "ExistingIDAfterSave", func(e *env) {
		id, _ := e.createValues("orig", "1")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("saved", "2"), At: e.clock.Now()}))
		e.wantErr("Create on an existing ID", e.s.Create(e.ctx, id, e.record(vals("other", "3"))), filesession.ErrExists)
		e.wantValues(id, "orig", "1", "saved", "2")
	})

	// An expired record's ID may be reused or refused, but its data must
	// not come back (see the package documentation).
	su.run(t, "OverExpiredID", func(e *env) {
		id, r := e.createValues("old", `"stale"`)
		e.clock.Advance(r.IdleTimeout)
		fresh := e.record(vals("new", `"fresh"`))
		err := e.s.Create(e.ctx, id, fresh)
		switch {
		case err == nil:
			e.wantRecord(id, fresh)
		case errors.Is(err, filesession.ErrExists):
			e.wantNotFound(id, "of an expired session after Create refused its ID")
		default:
			e.t.Errorf("Create over an expired ID: %v, want nil or ErrExists", err)
		}
	})

	su.run(t, "ManySessions", func(e *env) {
		ids := make([]string, 10)
		for i := range ids {
			ids[i], _ = e.createValues("n", string(rune('0'+i)))
		}
		for i, id := range ids {
			e.wantValues(id, "n", string(rune('0'+i)))
		}
		e.wantListed("after creating 10 sessions", ids...)
	})
}

func testLoad(t *testing.T, su *suite) {
	su.run(t, "NeverCreated", func(e *env) {
		id := e.newID()
		e.wantNotFound(id, "of an ID never created")
		e.wantNotFound(id, "of an ID never created, twice")
		// Django's CVE-2015-5143: loading an unknown key must not create it.
		e.wantListed("after loading an ID never created")
	})

	su.run(t, "NotFoundIsNotExists", func(e *env) {
		_, err := e.s.Load(e.ctx, e.newID())
		if errors.Is(err, filesession.ErrExists) || errors.Is(err, filesession.ErrInvalidID) {
			e.t.Errorf("Load of a valid, unknown ID: %v, want plain ErrNotFound (not ErrExists or ErrInvalidID)", err)
		}
	})
}
