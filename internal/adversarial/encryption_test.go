package adversarial

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// Encryption at rest: the session directory holds envelopes that only the
// server's key ring opens, each bound to its session's name. Someone who
// can change the directory but has no key cannot make the server accept a
// session: a file of another key, a plaintext file planted in it, contents
// swapped, copied or tampered with are all "no session" (401 or 200 as the
// route decides, never a 500), and the server changes nothing on disk for
// them: no quarantine, no new file.

// Encryption keys of the suite: encKey is the server's, strangerEncKey one
// it never had. Exactly filestore.KeySize bytes each.
var (
	encKey         = []byte("adversarial-suite-encryption-k1!")
	strangerEncKey = []byte("adversarial-suite-strangers-enc!")
)

// encrypted is the setup of a server whose store encrypts with encKey, and
// hashes file names if hashNames is set.
func encrypted(hashNames bool) setup {
	return setup{store: func(o *filestore.Options) {
		o.EncryptionKeys = [][]byte{encKey}
		o.HashNames = hashNames
	}}
}

// plant writes a session for a new ID into e's directory through another
// store on it, configured by opts (its keys, its naming), as someone with
// write access to the directory but not the server's key could, and
// returns the ID. The session belongs to a user, so that accepting it would
// show.
func plant(t *testing.T, e *env, opts filestore.Options) string {
	t.Helper()
	opts.Path, opts.Now, opts.Logger, opts.Sync = e.dir, e.clock.Now, quietLogger(), filestore.SyncNone
	s, err := filestore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := filesession.NewID()
	now := e.clock.Now()
	if err := s.Create(t.Context(), id, filesession.Record{
		Values:  map[string]json.RawMessage{"user": json.RawMessage(`"planted@example.com"`)},
		Created: now, LastAccess: now, IdleTimeout: 24 * time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// quietLogger discards the log of the stores that plant files.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cookieFor returns a request builder that presents id in a cookie signed
// with the server's own key, so the MAC passes and only the store stands
// between the request and the session.
func cookieFor(e *env, id string) func(method, path string) *http.Request {
	return func(method, path string) *http.Request {
		req := request(method, path)
		req.AddCookie(&http.Cookie{Name: e.name(), Value: sign(testKey, e.name(), id)})
		return req
	}
}

// sessionFileNames returns the names of the session files, whatever they
// are named by.
func (e *env) sessionFileNames() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		if n := d.Name(); strings.HasPrefix(n, "sess_") && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// newSessionFile returns the one session file name in after that is not in
// before.
func newSessionFile(t *testing.T, before, after []string) string {
	t.Helper()
	var added []string
	for _, n := range after {
		if !slices.Contains(before, n) {
			added = append(added, n)
		}
	}
	if len(added) != 1 {
		t.Fatalf("new session files %v, want one", added)
	}
	return added[0]
}

// loggedIn logs a new browser in as email and returns it with the name of
// its session file.
func loggedIn(t *testing.T, e *env, email string) (*browser, string) {
	t.Helper()
	before := e.sessionFileNames()
	b := e.browser(t)
	b.login(email)
	expect(t, b.get("/me"), http.StatusOK)
	// The pre-login session was renewed away: one file is new.
	return b, newSessionFile(t, before, e.sessionFileNames())
}

func TestEncryptionAtRest(t *testing.T) {
	for _, hashNames := range []bool{false, true} {
		names := "file names are session IDs"
		if hashNames {
			names = "file names are hashed"
		}
		t.Run(names, func(t *testing.T) {
			e := newEnv(t, encrypted(hashNames))

			t.Run("session written with a key the server does not have is no session", func(t *testing.T) {
				id := plant(t, e, filestore.Options{EncryptionKeys: [][]byte{strangerEncKey}, HashNames: hashNames})
				e.noSession(t, cookieFor(e, id))
				logs := e.logs.String()
				if !strings.Contains(logs, "no key of the encryption key ring opens") {
					t.Errorf("no warning about the undecryptable file:\n%s", logs)
				}
				if strings.Contains(logs, id) {
					t.Error("the log holds the raw session ID")
				}
			})

			t.Run("plaintext session planted in an encrypted store is no session", func(t *testing.T) {
				id := plant(t, e, filestore.Options{HashNames: hashNames})
				e.noSession(t, cookieFor(e, id))
			})

			t.Run("swapped files: neither browser gets a session, nor the other's", func(t *testing.T) {
				victim, vName := loggedIn(t, e, "victim@example.com")
				attacker, aName := loggedIn(t, e, "attacker@example.com")
				vPath, aPath := filepath.Join(e.dir, vName), filepath.Join(e.dir, aName)
				vData, err := readQuietly(vPath)
				if err != nil {
					t.Fatal(err)
				}
				aData, err := readQuietly(aPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(vPath, aData, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(aPath, vData, 0o600); err != nil {
					t.Fatal(err)
				}
				for _, b := range []*browser{victim, attacker} {
					value := b.value
					e.noSession(t, func(method, path string) *http.Request {
						req := request(method, path)
						req.AddCookie(&http.Cookie{Name: e.name(), Value: value})
						return req
					})
				}
			})

			t.Run("victim's file copied to the attacker's name is no session", func(t *testing.T) {
				_, vName := loggedIn(t, e, "victim2@example.com")
				attacker, aName := loggedIn(t, e, "attacker2@example.com")
				vData, err := readQuietly(filepath.Join(e.dir, vName))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(e.dir, aName), vData, 0o600); err != nil {
					t.Fatal(err)
				}
				value := attacker.value
				e.noSession(t, func(method, path string) *http.Request {
					req := request(method, path)
					req.AddCookie(&http.Cookie{Name: e.name(), Value: value})
					return req
				})
			})

			t.Run("tampered ciphertext is no session", func(t *testing.T) {
				b, name := loggedIn(t, e, "tampered@example.com")
				path := filepath.Join(e.dir, name)
				data, err := readQuietly(path)
				if err != nil {
					t.Fatal(err)
				}
				var env map[string]string
				if err := json.Unmarshal(data, &env); err != nil {
					t.Fatalf("not an envelope: %v", err)
				}
				// Flip a character of the base64 ciphertext (still valid
				// base64, so it decodes and fails authentication).
				d := []byte(env["data"])
				i := len(d) / 2
				if d[i] == 'A' {
					d[i] = 'B'
				} else {
					d[i] = 'A'
				}
				env["data"] = string(d)
				forged, _ := json.Marshal(env)
				if err := os.WriteFile(path, forged, 0o600); err != nil {
					t.Fatal(err)
				}
				value := b.value
				e.noSession(t, func(method, path string) *http.Request {
					req := request(method, path)
					req.AddCookie(&http.Cookie{Name: e.name(), Value: value})
					return req
				})
			})

			t.Run("nothing of a session is on disk in clear", func(t *testing.T) {
				b, name := loggedIn(t, e, "clear-text@example.com")
				data, err := readQuietly(filepath.Join(e.dir, name))
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range []string{"clear-text@example.com", b.id(), "csrfToken"} {
					if strings.Contains(string(data), secret) {
						t.Errorf("%q is in the session file in clear", secret)
					}
				}
				if hashNames && strings.Contains(name, b.id()) {
					t.Error("the file name holds the session ID")
				}
				if !hashNames && !strings.Contains(name, b.id()) {
					t.Error("without HashNames the file should be named by the ID")
				}
			})

			// Only with HashNames: otherwise the file name is the ID.
			hashedNameCase := func(t *testing.T) {
				b, name := loggedIn(t, e, "hashed@example.com")
				hash := strings.TrimSuffix(strings.TrimPrefix(name, "sess_"), ".json")
				if hash == b.id() {
					t.Fatal("the file is named by the ID")
				}
				e.noSession(t, cookieFor(e, hash))
				// And the cookie's own ID still finds its own file.
				expect(t, b.get("/me"), http.StatusOK)
			}
			if hashNames {
				t.Run("a hashed file name presented as an ID is no session", hashedNameCase)
			}

			t.Run("a browser with an undecryptable session logs in afresh, the old file untouched", func(t *testing.T) {
				id := plant(t, e, filestore.Options{EncryptionKeys: [][]byte{strangerEncKey}, HashNames: hashNames})
				old := map[string]string{}
				for _, n := range e.sessionFileNames() {
					data, err := readQuietly(filepath.Join(e.dir, n))
					if err != nil {
						t.Fatal(err)
					}
					old[n] = string(data)
				}
				b := e.browser(t)
				b.value = sign(testKey, e.name(), id)
				b.login("fresh@example.com")
				if b.id() == id {
					t.Error("the login kept the undecryptable session's ID")
				}
				rec := b.get("/me")
				expect(t, rec, http.StatusOK)
				if rec.Body.String() != "fresh@example.com" {
					t.Errorf("/me: %q", rec.Body)
				}
				// Every file that was there, the undecryptable one included,
				// is as it was: the new session is a new file.
				for n, data := range old {
					now, err := readQuietly(filepath.Join(e.dir, n))
					if err != nil || string(now) != data {
						t.Errorf("%s changed or went away: %v", n, err)
					}
				}
			})
		})
	}
}

// oldEncKey is a key being rotated out.
var oldEncKey = []byte("adversarial-suite-rotated-enc-k0")

// TestEncryptionKeyRotation: during a rotation (the new key first, the old
// one still in the ring) a session written under the old key is a session,
// and its next save writes it under the new key; with the old key dropped
// before that save, it is no session, and its file stays as it was.
func TestEncryptionKeyRotation(t *testing.T) {
	for _, hashNames := range []bool{false, true} {
		t.Run(map[bool]string{false: "file names are session IDs", true: "file names are hashed"}[hashNames], func(t *testing.T) {
			rotating := newEnv(t, setup{store: func(o *filestore.Options) {
				o.EncryptionKeys = [][]byte{encKey, oldEncKey}
				o.HashNames = hashNames
			}})
			saved := plant(t, rotating, filestore.Options{EncryptionKeys: [][]byte{oldEncKey}, HashNames: hashNames})
			idle := plant(t, rotating, filestore.Options{EncryptionKeys: [][]byte{oldEncKey}, HashNames: hashNames})
			kidOf := func(e *env, id string) string {
				t.Helper()
				ent, err := e.store.Inspect(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				data, err := readQuietly(filepath.Join(e.dir, ent.Name))
				if err != nil {
					t.Fatal(err)
				}
				var env struct{ Kid string }
				if err := json.Unmarshal(data, &env); err != nil || env.Kid == "" {
					t.Fatalf("not an envelope: %v", err)
				}
				return env.Kid
			}
			oldKid := kidOf(rotating, saved)

			b := rotating.browser(t)
			b.value = sign(testKey, rotating.name(), saved)
			rec := b.get("/me")
			expect(t, rec, http.StatusOK)
			if rec.Body.String() != "planted@example.com" {
				t.Fatalf("/me: %q", rec.Body)
			}
			b.fetchToken()
			expect(t, b.post("/count"), http.StatusOK)
			if k := kidOf(rotating, saved); k == oldKid {
				t.Error("a save during rotation kept the old key")
			}
			if k := kidOf(rotating, idle); k != oldKid {
				t.Error("a session nobody used was rewritten")
			}
			rotating.store.Close()
			rotating.closed = true

			// The old key dropped: the saved session lives on, the idle one
			// (never rewritten, and no Rekey run) is no session.
			done := newEnv(t, setup{store: func(o *filestore.Options) {
				o.Path = rotating.dir
				o.EncryptionKeys = [][]byte{encKey}
				o.HashNames = hashNames
			}})
			nb := done.browser(t)
			nb.value = b.value
			expect(t, nb.get("/me"), http.StatusOK)
			before := rotating.snapshot()
			req := request("GET", "/me")
			req.AddCookie(&http.Cookie{Name: done.name(), Value: sign(testKey, done.name(), idle)})
			rec = done.serve(req)
			expect(t, rec, http.StatusUnauthorized)
			noNewCookie(t, done, rec)
			rotating.unchanged(t, before)
		})
	}
}

// TestEncryptionLogsCarryNoSecrets runs a flow with encryption and hashed
// names on, through every warning the encryption adds, and checks that the
// logs hold no session ID, cookie value, CSRF token or key, in any of the
// encodings a careless log line would use.
func TestEncryptionLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t, encrypted(true))
	var secrets []string
	for _, k := range [][]byte{encKey, strangerEncKey} {
		secrets = append(secrets, string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k))
	}
	keep := func(b *browser) { secrets = append(secrets, b.value, b.id(), b.token) }

	user := e.browser(t)
	user.login("user@example.com")
	keep(user)
	expect(t, user.post("/count"), http.StatusOK)

	// A wrong key, a planted plaintext file, swapped files.
	for _, o := range []filestore.Options{{EncryptionKeys: [][]byte{strangerEncKey}, HashNames: true}, {HashNames: true}} {
		id := plant(t, e, o)
		secrets = append(secrets, id)
		e.noSession(t, cookieFor(e, id))
	}
	a, aName := loggedIn(t, e, "a@example.com")
	c, cName := loggedIn(t, e, "c@example.com")
	keep(a)
	keep(c)
	aData, _ := readQuietly(filepath.Join(e.dir, aName))
	cData, _ := readQuietly(filepath.Join(e.dir, cName))
	os.WriteFile(filepath.Join(e.dir, aName), cData, 0o600)
	os.WriteFile(filepath.Join(e.dir, cName), aData, 0o600)
	expect(t, a.get("/me"), http.StatusUnauthorized)
	expect(t, user.post("/logout"), http.StatusOK)

	logs := e.logs.String()
	for _, want := range []string{"no key of the encryption key ring opens", "plaintext session file in a store that requires encryption", "session destroyed"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the logs lack %q, so the capture is not what it should be:\n%s", want, logs)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, part := range []string{s, s[:min(len(s), 16)], s[len(s)-min(len(s), 16):]} {
			if strings.Contains(logs, part) {
				t.Fatalf("the logs contain %q, part of a secret:\n%s", part, logs)
			}
		}
	}
}
