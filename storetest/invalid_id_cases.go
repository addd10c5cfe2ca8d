package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/filesession/filesession"
)

// invalidIDs are IDs every store must refuse before they reach a file
// name, key or query. The 43-character ones have the length of a real ID,
// so only the alphabet check can stop them.
var invalidIDs = []struct{ name, id string }{
	{"Empty", ""},
	{"Dot", "."},
	{"DotDot", ".."},
	{"ParentPath", "../x"},
	{"Slash", "a/b"},
	{"PercentEncodedTraversal", "%2e%2e%2f"},
	{"FullLengthWithSlash", strings.Repeat("a", 20) + "/" + strings.Repeat("b", 22)},
	{"FullLengthWithDot", strings.Repeat("a", 42) + "."},
	{"FullLengthTraversal", "../../../../../../../../../../etc/passwdxxx"},
	{"FullLengthWithBackslash", strings.Repeat("a", 21) + `\` + strings.Repeat("b", 21)},
	{"FullLengthStdBase64", strings.Repeat("a", 21) + "+" + strings.Repeat("b", 21)},
	{"FullLengthPadded", strings.Repeat("a", 42) + "="},
	{"FullLengthWithSpace", strings.Repeat("a", 21) + " " + strings.Repeat("b", 21)},
	{"FullLengthWithNewline", strings.Repeat("a", 42) + "\n"},
	{"FullLengthWithNUL", strings.Repeat("a", 21) + "\x00" + strings.Repeat("b", 21)},
	{"FullLengthGlob", strings.Repeat("a", 42) + "*"},
	{"NonASCII43Bytes", strings.Repeat("a", 41) + "é"},
	{"NonASCII43Runes", strings.Repeat("a", 42) + "é"},
	{"InvalidUTF8", strings.Repeat("a", 42) + "\xff"},
	{"TooShort42", strings.Repeat("a", 42)},
	{"TooLong44", strings.Repeat("a", 44)},
	{"ExpressLength32", strings.Repeat("a", 32)},
	{"VeryLong", strings.Repeat("a", 4096)},
}

func init() {
	for _, c := range invalidIDs {
		if filesession.ValidID(c.id, filesession.IDLength) {
			panic("storetest: invalid-ID case " + c.name + " is a valid ID")
		}
	}
}

// testInvalidID runs every method with every invalid ID: each must fail
// with an error matching both ErrInvalidID and ErrNotFound, and leave the
// store as it was (one live session, untouched).
func testInvalidID(t *testing.T, su *suite) {
	ops := []struct {
		name string
		call func(e *env, live, bad string, called *bool) error
	}{
		{"Load", func(e *env, _, bad string, _ *bool) error {
			_, err := e.s.Load(e.ctx, bad)
			return err
		}},
		{"Create", func(e *env, _, bad string, _ *bool) error {
			return e.s.Create(e.ctx, bad, e.record(vals("evil", "1")))
		}},
		{"Save", func(e *env, _, bad string, _ *bool) error {
			return e.s.Save(e.ctx, bad, filesession.Change{Set: vals("evil", "1"), At: e.clock.Now()})
		}},
		{"Touch", func(e *env, _, bad string, _ *bool) error {
			now := e.clock.Now()
			return e.s.Touch(e.ctx, bad, now, now.Add(idle))
		}},
		{"Update", func(e *env, _, bad string, called *bool) error {
			return e.s.Update(e.ctx, bad, func(*filesession.Record) error {
				*called = true
				return nil
			})
		}},
		{"RenewFrom", func(e *env, _, bad string, _ *bool) error {
			return e.s.Renew(e.ctx, bad, filesession.NewID(), filesession.Change{At: e.clock.Now()})
		}},
		{"RenewTo", func(e *env, live, bad string, _ *bool) error {
			return e.s.Renew(e.ctx, live, bad, filesession.Change{Set: vals("evil", "1"), At: e.clock.Now()})
		}},
		{"Delete", func(e *env, _, bad string, _ *bool) error {
			return e.s.Delete(e.ctx, bad)
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, c := range invalidIDs {
				su.run(t, c.name, func(e *env) {
					live, want := e.createValues("a", "1")
					var called bool
					err := op.call(e, live, c.id, &called)
					if !errors.Is(err, filesession.ErrInvalidID) || !errors.Is(err, filesession.ErrNotFound) {
						e.t.Errorf("%s(%s): got %v, want an error matching ErrInvalidID and ErrNotFound", op.name, describe(c.id), err)
					}
					if called {
						e.t.Errorf("Update(%s) called fn", describe(c.id))
					}
					e.wantRecord(live, want)
					e.wantListed("after "+op.name+" with an invalid ID", live)
				})
			}
		})
	}
}
