package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/filesession/filesession"
)

// invalidIDs returns IDs every store with IDs of length n must refuse
// before they reach a file name, key or query. The ones named FullLength
// have the length of a real ID, so only the alphabet check can stop them.
// For n = 43 (filesession.IDLength) the names are those of Run's cases.
func invalidIDs(n int) []struct{ name, id string } {
	a, b := strings.Repeat("a", (n-1)/2), strings.Repeat("b", n-1-(n-1)/2)
	pad := func(s string) string {
		// s padded with 'x' (or cut) to exactly n bytes.
		if len(s) >= n {
			return s[:n]
		}
		return s + strings.Repeat("x", n-len(s))
	}
	other := 32
	otherName := "ExpressLength32"
	if n == 32 {
		other, otherName = filesession.IDLength, fmt.Sprintf("DefaultLength%d", filesession.IDLength)
	}
	ids := []struct{ name, id string }{
		{"Empty", ""},
		{"Dot", "."},
		{"DotDot", ".."},
		{"ParentPath", "../x"},
		{"Slash", "a/b"},
		{"PercentEncodedTraversal", "%2e%2e%2f"},
		{"FullLengthWithSlash", a + "/" + b},
		{"FullLengthWithDot", strings.Repeat("a", n-1) + "."},
		{"FullLengthTraversal", pad(strings.Repeat("../", max(0, n-10)/3) + "etc/passwd")},
		{"FullLengthWithBackslash", a + `\` + b},
		{"FullLengthStdBase64", a + "+" + b},
		{"FullLengthPadded", strings.Repeat("a", n-1) + "="},
		{"FullLengthWithSpace", a + " " + b},
		{"FullLengthWithNewline", strings.Repeat("a", n-1) + "\n"},
		{"FullLengthWithNUL", a + "\x00" + b},
		{"FullLengthGlob", strings.Repeat("a", n-1) + "*"},
		{fmt.Sprintf("NonASCII%dBytes", n), strings.Repeat("a", n-2) + "é"},
		{fmt.Sprintf("NonASCII%dRunes", n), strings.Repeat("a", n-1) + "é"},
		{"InvalidUTF8", strings.Repeat("a", n-1) + "\xff"},
		{fmt.Sprintf("TooShort%d", n-1), strings.Repeat("a", n-1)},
		{fmt.Sprintf("TooLong%d", n+1), strings.Repeat("a", n+1)},
		{otherName, strings.Repeat("a", other)},
		{"VeryLong", strings.Repeat("a", 4096)},
	}
	for _, c := range ids {
		if filesession.ValidID(c.id, n) {
			panic("storetest: invalid-ID case " + c.name + " is a valid ID")
		}
	}
	return ids
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
			return e.s.Renew(e.ctx, bad, e.newID(), filesession.Change{At: e.clock.Now()})
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
			for _, c := range invalidIDs(su.cfg.IDLength) {
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
