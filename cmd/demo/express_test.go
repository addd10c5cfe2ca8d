package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession/internal/expresstest"
)

// The demo under -preset express beside the real Express app of
// testdata/express on one directory and one secret, driven by one browser
// (one cookie jar) over real HTTP.

const expressSecret = "demo-express-secret-0123456789abcdefghij"

func TestExpressPresetIsExpressPartner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	node := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{expressSecret}})
	demo := demoServerWith(t, config{Dir: dir, TTL: 24 * time.Hour, Secret: []byte(expressSecret), Preset: presetExpress})
	b := expresstest.NewBrowser(t)

	email := func(base string) string {
		t.Helper()
		r := b.Get(base + "/api/me")
		if r.Status == http.StatusUnauthorized {
			return ""
		}
		var u user
		r.JSON(t, &u)
		return u.Email
	}
	login := func(base, who string) {
		t.Helper()
		if r := b.PostForm(base, "/login", url.Values{"email": {who}, "password": {"pw"}}); r.Status != http.StatusSeeOther {
			t.Fatalf("login on %s: %d %s", base, r.Status, r.Body)
		}
	}

	login(node.URL, "node@example.com")
	if got := email(demo.URL); got != "node@example.com" {
		t.Fatalf("demo sees %q after an Express login", got)
	}
	if v := b.Cookie(demo.URL, "connect.sid"); !strings.HasPrefix(v, "s%3A") {
		t.Fatalf("cookie %q is not express-session's", v)
	}
	for i := 1; i <= 6; i++ {
		base := []string{node.URL, demo.URL}[i%2]
		r := b.PostJSON(base, "/api/count", nil)
		var out struct{ Count int }
		r.JSON(t, &out)
		if out.Count != i {
			t.Fatalf("increment %d on %s: %d %s", i, base, r.Status, r.Body)
		}
	}
	login(demo.URL, "demo@example.com")
	if got := email(node.URL); got != "demo@example.com" {
		t.Fatalf("Express sees %q after a demo login", got)
	}
	if r := b.PostForm(node.URL, "/logout", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("logout on Express: %d", r.Status)
	}
	if got := email(demo.URL); got != "" {
		t.Fatalf("demo sees %q after an Express logout", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			t.Errorf("session file %s left after logout", e.Name())
		}
	}
}

func TestExpressPresetFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, _, err := parseFlags([]string{"-preset", "express", "-secret", expressSecret}, noEnv, io.Discard)
	if err != nil || cfg.Preset != presetExpress || string(cfg.Secret) != expressSecret {
		t.Fatalf("parseFlags: %+v, %v", cfg, err)
	}
	cfg, _, err = parseFlags([]string{"-preset", "express"}, func(k string) string {
		if k == "SESSION_SECRET" {
			return expressSecret
		}
		return ""
	}, io.Discard)
	if err != nil || string(cfg.Secret) != expressSecret {
		t.Fatalf("SESSION_SECRET with -preset express: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"-preset", "express"},                            // no secret: a generated one cannot match Node's
		{"-preset", "express", "-secret", "keyboard cat"}, // too short to sign with
		{"-preset", "rails"},
	} {
		if _, _, err := parseFlags(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	if _, _, err := newApp(config{Dir: t.TempDir(), TTL: time.Hour, Preset: presetExpress, Logger: discardLogger()}); err == nil {
		t.Error("newApp with the express preset and no secret")
	}
}
