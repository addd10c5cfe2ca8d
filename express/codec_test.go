package express_test

import (
	"strings"
	"testing"

	"github.com/filesession/filesession/express"
)

const secret = "express-interop-secret-0123456789abcdef"

func TestEncodeIsExpressFormat(t *testing.T) {
	c, err := express.NewCodec(secret)
	if err != nil {
		t.Fatal(err)
	}
	id := c.NewID()
	if len(id) != express.IDLength || !c.ValidID(id) {
		t.Fatalf("NewID %q", id)
	}
	v := c.Encode(express.CookieName, id)
	if !strings.HasPrefix(v, "s%3A"+id+".") || strings.ContainsAny(v, "+/=:") {
		t.Fatalf("value %q is not URI-encoded s:<sid>.<sig>", v)
	}
	got, current, ok := c.Decode(express.CookieName, v)
	if !ok || !current || got != id {
		t.Fatalf("round trip: %q %v %v", got, current, ok)
	}
	// express-session also accepts the raw, unencoded form.
	raw := strings.NewReplacer("%3A", ":", "%2B", "+", "%2F", "/").Replace(v)
	if got, _, ok := c.Decode(express.CookieName, raw); !ok || got != id {
		t.Fatalf("raw form %q refused", raw)
	}
}

func TestDecodeRefusals(t *testing.T) {
	c, _ := express.NewCodec(secret)
	other, _ := express.NewCodec(secret + "-other")
	id := c.NewID()
	good := c.Encode(express.CookieName, id)
	for name, v := range map[string]string{
		"unsigned":      id,
		"no prefix":     strings.TrimPrefix(good, "s%3A"),
		"other secret":  other.Encode(express.CookieName, id),
		"bit flip":      good[:len(good)-2] + "A" + good[len(good)-1:],
		"traversal":     "s:../../x." + strings.Repeat("A", 43),
		"bad escape":    "s%3" + good[4:],
		"empty":         "",
		"only dot":      "s:.",
		"short sid":     "s:" + id[:31] + "." + strings.Repeat("A", 43),
		"trailing data": good + "A",
	} {
		if _, _, ok := c.Decode(express.CookieName, v); ok {
			t.Errorf("%s: %q accepted", name, v)
		}
	}
}

func TestRotation(t *testing.T) {
	old, _ := express.NewCodec(secret)
	rotated, err := express.NewCodec(secret+"-new", secret)
	if err != nil {
		t.Fatal(err)
	}
	id := old.NewID()
	got, current, ok := rotated.Decode(express.CookieName, old.Encode(express.CookieName, id))
	if !ok || current || got != id {
		t.Fatalf("old-secret cookie during rotation: %q current=%v ok=%v", got, current, ok)
	}
}

func TestWeakSecret(t *testing.T) {
	if _, err := express.NewCodec("keyboard cat"); err == nil {
		t.Fatal("short signing secret accepted")
	}
	if _, err := express.NewCodec(secret, ""); err == nil {
		t.Fatal("empty verify secret accepted")
	}
}

func FuzzDecode(f *testing.F) {
	c, _ := express.NewCodec(secret)
	f.Add(c.Encode(express.CookieName, c.NewID()))
	f.Add("s:")
	f.Add("%")
	f.Fuzz(func(t *testing.T, v string) {
		id, _, ok := c.Decode(express.CookieName, v)
		if ok && !c.ValidID(id) {
			t.Fatalf("verified invalid id %q from %q", id, v)
		}
	})
}
