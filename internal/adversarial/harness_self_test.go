package adversarial

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHarness checks the checks: the snapshot sees every kind of change
// the other tests rely on it to see, and a live cookie is a session, so a
// case's "no session" is the case's doing.
func TestHarness(t *testing.T) {
	t.Run("a live cookie through noSession's request is a session", func(t *testing.T) {
		e := newEnv(t, setup{})
		b := e.browser(t)
		b.login("harness@example.com")
		req := request("GET", "/me")
		req.AddCookie(&http.Cookie{Name: e.name(), Value: b.value})
		expect(t, e.serve(req), http.StatusOK)
	})
	// Each change on a fresh env, so that one cannot undo another.
	var e *env
	var b *browser
	var file string
	changes := map[string]func(){
		"a changed modification time": func() {
			mt := time.Now().Add(time.Hour)
			os.Chtimes(file, mt, mt)
		},
		"a changed access time (the store's expiry hint)": func() {
			fi, _ := os.Stat(file)
			os.Chtimes(file, time.Now().Add(48*time.Hour), fi.ModTime())
		},
		"changed content of the same size": func() {
			data, _ := readQuietly(file)
			data[len(data)-2] ^= 1
			os.WriteFile(file, data, 0o600)
		},
		"a changed mode": func() { os.Chmod(file, 0o640) },
		"a new file outside the session directory": func() {
			os.WriteFile(filepath.Join(e.root, "new"), nil, 0o600)
		},
		"a canary changed": func() {
			os.WriteFile(filepath.Join(e.root, canaries[0]), []byte("changed"), 0o600)
		},
		"a session written by the app": func() { b.post("/put?k=a&v=1") },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			e = newEnv(t, setup{})
			b = e.browser(t)
			b.login("harness@example.com")
			file = filepath.Join(e.dir, "sess_"+b.id()+".json")
			before := e.snapshot()
			change()
			if diff(before, e.snapshot()) == "" {
				t.Fatal("the snapshot did not see it")
			}
		})
	}
}
