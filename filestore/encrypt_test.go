package filestore_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// encStart is the start of these tests' fake clock, in whole milliseconds
// like every stored time.
var encStart = time.UnixMilli(1796292220850)

// secretValue is a session value that must never appear on disk in clear.
const secretValue = "correct-horse-battery-staple-7f3a9c"

// newKey returns a fresh ring key.
func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, filestore.KeySize)
	rand.Read(k)
	return k
}

// encEnv is one store on a directory, with its clock and its log. Several
// encEnvs may share a directory (with their own options) to play a
// misconfigured or rotated deployment.
type encEnv struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	clock *storetest.Clock
	logs  *syncBuffer
	s     *filestore.Store
	opts  filestore.Options
}

// openEnc opens a store on dir (a fresh directory if empty) with o's
// encryption and name options, no background reaper, and its own clock
// (clock, or a new one if nil).
func openEnc(t *testing.T, dir string, clock *storetest.Clock, o filestore.Options) *encEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if clock == nil {
		clock = storetest.NewClock(encStart)
	}
	e := &encEnv{t: t, ctx: t.Context(), dir: dir, clock: clock, logs: &syncBuffer{}}
	o.Path, o.Now, o.Sync = dir, clock.Now, filestore.SyncNone
	o.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.s, e.opts = s, o
	return e
}

// record is a session holding the secret value and a user.
func (e *encEnv) record() filesession.Record {
	now := e.clock.Now()
	return filesession.Record{
		Values: map[string]json.RawMessage{
			"secret": json.RawMessage(`"` + secretValue + `"`),
			"user":   json.RawMessage(`{"email":"alice@example.com"}`),
		},
		Created: now, LastAccess: now, IdleTimeout: time.Hour,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// create stores a new session and returns its ID.
func (e *encEnv) create() string {
	e.t.Helper()
	id := filesession.NewID()
	if err := e.s.Create(e.ctx, id, e.record()); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// sessionFiles returns the names of the session files in the directory.
func (e *encEnv) sessionFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, de := range ents {
		if n := de.Name(); strings.HasPrefix(n, "sess_") && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	return names
}

// onlyFile returns the one session file of the directory.
func (e *encEnv) onlyFile() string {
	e.t.Helper()
	names := e.sessionFiles()
	if len(names) != 1 {
		e.t.Fatalf("session files %v, want exactly one", names)
	}
	return filepath.Join(e.dir, names[0])
}

// fileState is everything of a file that "untouched" covers.
type fileState struct {
	data         []byte
	ino          uint64
	mode         uint32
	mtime, atime unix.Timespec
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	b := readQuietly(t, path)
	return fileState{data: b, ino: st.Ino, mode: st.Mode, mtime: st.Mtim, atime: st.Atim}
}

// readQuietly reads a file with O_NOATIME, as the store does, so that the
// test's own reads do not move the access times it compares (the expiry
// hints are on the fake clock, which may be before the files' real change
// times, and then relatime moves them on a plain read).
func readQuietly(t *testing.T, path string) []byte {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a fileState) equal(b fileState) bool {
	return bytes.Equal(a.data, b.data) && a.ino == b.ino && a.mode == b.mode && a.mtime == b.mtime && a.atime == b.atime
}

// snapshotDir returns the state of every entry of dir by name.
func snapshotDir(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]fileState, len(ents))
	for _, de := range ents {
		m[de.Name()] = stateOf(t, filepath.Join(dir, de.Name()))
	}
	return m
}

func wantDirUnchanged(t *testing.T, dir string, before map[string]fileState) {
	t.Helper()
	after := snapshotDir(t, dir)
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s was removed", name)
		case !a.equal(b):
			t.Errorf("%s changed", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared", name)
		}
	}
}

// testEnvelope is the envelope's JSON, decoded independently of the store.
type testEnvelope struct {
	Alg   string `json:"filesession"`
	Kid   string `json:"kid"`
	Nonce string `json:"nonce"`
	Data  string `json:"data"`
}

// decryptFile decrypts an envelope following the README's Encryption at rest section, not the
// store's code, so that the documented format is what is tested: the file
// key is HKDF-SHA-256(key, salt = nonce[:12], info), the GCM nonce
// nonce[12:], the associated data the label, NUL, and the name key (the
// part of the file name between prefix and extension).
func decryptFile(t *testing.T, path string, key []byte) []byte {
	t.Helper()
	b := readQuietly(t, path)
	var env testEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, b)
	}
	nonce, err := base64.StdEncoding.DecodeString(env.Nonce)
	if err != nil || len(nonce) != 24 {
		t.Fatalf("nonce %q: %v", env.Nonce, err)
	}
	ct, err := base64.StdEncoding.DecodeString(env.Data)
	if err != nil {
		t.Fatal(err)
	}
	fk, err := hkdf.Key(sha256.New, key, nonce[:12], "filesession/filestore aes-256-gcm-v1 file key", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(fk)
	aead, _ := cipher.NewGCM(block)
	base := filepath.Base(path)
	nameKey := strings.TrimSuffix(strings.TrimPrefix(base, "sess_"), ".json")
	plain, err := aead.Open(nil, nonce[12:], ct, []byte("filesession/filestore aes-256-gcm-v1 session\x00"+nameKey))
	if err != nil {
		t.Fatalf("decrypting %s as documented: %v", base, err)
	}
	return plain
}

// kidOf is the documented key ID.
func kidOf(key []byte) string {
	sum := sha256.Sum256(append([]byte("filesession/filestore key id\x00"), key...))
	return hex.EncodeToString(sum[:])[:8]
}

func envelopeOf(t *testing.T, path string) testEnvelope {
	t.Helper()
	b := readQuietly(t, path)
	var env testEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("not an envelope: %v\n%s", err, b)
	}
	return env
}

// wantNotFoundBecause checks that err is "no session" (not corrupt) for
// reason.
func wantNotFoundBecause(t *testing.T, what string, err, reason error) {
	t.Helper()
	if !errors.Is(err, filesession.ErrNotFound) || errors.Is(err, filesession.ErrCorrupt) || !errors.Is(err, reason) {
		t.Errorf("%s: got %v, want not found (not corrupt) because %v", what, err, reason)
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	key := newKey(t)
	e := openEnc(t, "", nil, filestore.Options{EncryptionKeys: [][]byte{key}})
	id := e.create()
	path := e.onlyFile()
	if filepath.Base(path) != "sess_"+id+".json" {
		t.Errorf("file %s, want the ID's name without HashNames", filepath.Base(path))
	}

	raw := readQuietly(t, path)
	if bytes.Contains(raw, []byte(secretValue)) || bytes.Contains(raw, []byte("alice@example.com")) || bytes.Contains(raw, []byte(id)) {
		t.Errorf("a value or the ID is on disk in clear:\n%s", raw)
	}
	// One line of JSON with exactly the envelope's members, in order.
	if !bytes.HasPrefix(raw, []byte(`{"filesession":"aes-256-gcm-v1","kid":"`)) || bytes.ContainsAny(raw, "\n ") {
		t.Errorf("not a compact envelope:\n%s", raw)
	}
	var members map[string]any
	if err := json.Unmarshal(raw, &members); err != nil || len(members) != 4 {
		t.Errorf("envelope members %v (%v), want filesession, kid, nonce, data", members, err)
	}
	if env := envelopeOf(t, path); env.Kid != kidOf(key) {
		t.Errorf("kid %q, want %q", env.Kid, kidOf(key))
	}
	plain := decryptFile(t, path, key)
	if !bytes.HasPrefix(plain, []byte(`{"cookie":{"originalMaxAge":3600000,`)) || !bytes.Contains(plain, []byte(`"secret":"`+secretValue+`"`)) {
		t.Errorf("plaintext is not the ordinary file:\n%s", plain)
	}

	r, err := e.s.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Values["secret"]) != `"`+secretValue+`"` || r.IdleTimeout != time.Hour || !r.Created.Equal(encStart) {
		t.Errorf("loaded %+v", r)
	}

	// Save rewrites the plaintext keeping every unchanged byte, with a
	// fresh nonce.
	before := envelopeOf(t, path)
	e.clock.Advance(time.Minute)
	if err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"n": json.RawMessage(`1`)}, At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	after := envelopeOf(t, path)
	if after.Nonce == before.Nonce {
		t.Error("a rewrite reused the nonce")
	}
	plain2 := decryptFile(t, path, key)
	if !bytes.Contains(plain2, []byte(`"secret":"`+secretValue+`","user":{"email":"alice@example.com"},`)) || !bytes.Contains(plain2, []byte(`"n":1`)) {
		t.Errorf("rewritten plaintext:\n%s", plain2)
	}

	// Update, Touch, Renew, List, Delete all work through the envelope.
	if err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
		r.Values["n"] = json.RawMessage(`2`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if err := e.s.Touch(e.ctx, id, e.clock.Now(), e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	newID := filesession.NewID()
	if err := e.s.Renew(e.ctx, id, newID, filesession.Change{At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Load(e.ctx, id); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("old ID after Renew: %v", err)
	}
	r, err = e.s.Load(e.ctx, newID)
	if err != nil || string(r.Values["n"]) != "2" {
		t.Fatalf("renewed: %+v, %v", r, err)
	}
	// The renewed file is bound to the new ID.
	decryptFile(t, filepath.Join(e.dir, "sess_"+newID+".json"), key)
	var listed []string
	if err := e.s.List(e.ctx, func(id string, r filesession.Record) error {
		listed = append(listed, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, []string{newID}) {
		t.Errorf("List: %v, want [%s]", listed, newID)
	}
	if err := e.s.Delete(e.ctx, newID); err != nil {
		t.Fatal(err)
	}
	if names := e.sessionFiles(); len(names) != 0 {
		t.Errorf("after Delete: %v", names)
	}
	if strings.Contains(e.logs.String(), "WARN") {
		t.Errorf("warnings in a healthy store:\n%s", e.logs)
	}
}

func TestEncryptionWrongKey(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(encStart)
	writer := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	id := writer.create()
	path := writer.onlyFile()
	writer.s.Close()

	e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	before := snapshotDir(t, dir)
	_, err := e.s.Load(e.ctx, id)
	wantNotFoundBecause(t, "Load", err, filestore.ErrUndecryptable)
	wantNotFoundBecause(t, "Save", e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"x": json.RawMessage(`1`)}, At: clock.Now()}), filestore.ErrUndecryptable)
	wantNotFoundBecause(t, "Update", e.s.Update(e.ctx, id, func(*filesession.Record) error {
		t.Error("Update called fn on a file no key opens")
		return nil
	}), filestore.ErrUndecryptable)
	wantNotFoundBecause(t, "Renew", e.s.Renew(e.ctx, id, filesession.NewID(), filesession.Change{At: clock.Now()}), filestore.ErrUndecryptable)
	wantDirUnchanged(t, dir, before)

	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "no key of the encryption key ring opens") {
		t.Errorf("no warning:\n%s", logs)
	}
	if strings.Contains(logs, id) {
		t.Errorf("the raw session ID is in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "kid="+envelopeOf(t, path).Kid) {
		t.Errorf("the warning does not say which key the file wants:\n%s", logs)
	}

	// Expired by every measure, still not reaped: the store cannot tell
	// what it is, so it is not the store's to delete.
	clock.Advance(48 * time.Hour)
	if n, err := e.s.Reap(e.ctx); n != 0 || err != nil {
		t.Errorf("Reap: %d, %v", n, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the reaper removed a file no key opens: %v", err)
	}
}

func TestEncryptionWarningsRateLimited(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(encStart)
	writer := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	var ids []string
	for range 3 {
		ids = append(ids, writer.create())
	}
	e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	for range 100 {
		for _, id := range ids {
			if _, err := e.s.Load(e.ctx, id); !errors.Is(err, filestore.ErrUndecryptable) {
				t.Fatal(err)
			}
		}
	}
	if n := strings.Count(e.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for 300 loads in one minute, want 1:\n%s", n, e.logs)
	}
	clock.Advance(2 * time.Minute)
	if _, err := e.s.Load(e.ctx, ids[0]); !errors.Is(err, filestore.ErrUndecryptable) {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "level=WARN"); n != 2 || !strings.Contains(logs, "suppressed=299") {
		t.Errorf("after a minute, want a second warning with suppressed=299:\n%s", logs)
	}
}

func TestEncryptionSwappedFiles(t *testing.T) {
	for _, hashNames := range []bool{false, true} {
		t.Run(map[bool]string{false: "IDNames", true: "HashNames"}[hashNames], func(t *testing.T) {
			key := newKey(t)
			e := openEnc(t, "", nil, filestore.Options{EncryptionKeys: [][]byte{key}, HashNames: hashNames})
			a, b := e.create(), e.create()
			names := e.sessionFiles()
			pa, pb := filepath.Join(e.dir, names[0]), filepath.Join(e.dir, names[1])
			da, _ := os.ReadFile(pa)
			db, _ := os.ReadFile(pb)
			if err := os.WriteFile(pa, db, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pb, da, 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshotDir(t, e.dir)
			for _, id := range []string{a, b} {
				_, err := e.s.Load(e.ctx, id)
				wantNotFoundBecause(t, "Load of a swapped file", err, filestore.ErrUndecryptable)
			}
			wantDirUnchanged(t, e.dir, before)
		})
	}
}

func TestEncryptionTamperedAndMalformed(t *testing.T) {
	key := newKey(t)
	e := openEnc(t, "", nil, filestore.Options{EncryptionKeys: [][]byte{key}})
	id := e.create()
	path := e.onlyFile()
	good, _ := os.ReadFile(path)
	env := envelopeOf(t, path)
	ct, _ := base64.StdEncoding.DecodeString(env.Data)

	write := func(t *testing.T, b []byte) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(path + ".corrupt")
	}
	rewrap := func(mod func(*testEnvelope)) []byte {
		e2 := env
		mod(&e2)
		b, _ := json.Marshal(e2)
		return b
	}

	// Authentication failures: not found, untouched.
	for name, b := range map[string][]byte{
		"BitFlipInData": rewrap(func(e *testEnvelope) {
			c := bytes.Clone(ct)
			c[len(c)/2] ^= 1
			e.Data = base64.StdEncoding.EncodeToString(c)
		}),
		"TruncatedCiphertext": rewrap(func(e *testEnvelope) { e.Data = base64.StdEncoding.EncodeToString(ct[:len(ct)-1]) }),
		"OtherNonce": rewrap(func(e *testEnvelope) {
			e.Nonce = base64.StdEncoding.EncodeToString(make([]byte, 24))
		}),
		"WrongKidRightKey": rewrap(func(e *testEnvelope) { e.Kid = "00000000" }),
		"NewerFormat":      rewrap(func(e *testEnvelope) { e.Alg = "aes-256-gcm-v2" }),
	} {
		t.Run(name, func(t *testing.T) {
			write(t, b)
			before := snapshotDir(t, e.dir)
			_, err := e.s.Load(e.ctx, id)
			if name == "WrongKidRightKey" {
				// The kid is a hint: the ring is tried in full.
				if err != nil {
					t.Errorf("Load with a wrong kid: %v", err)
				}
				return
			}
			wantNotFoundBecause(t, "Load", err, filestore.ErrUndecryptable)
			wantDirUnchanged(t, e.dir, before)
		})
	}

	// Corrupt by any key: quarantined, as a file that is not JSON is.
	for name, b := range map[string][]byte{
		"Truncated":     good[:len(good)/2],
		"BadBase64":     rewrap(func(e *testEnvelope) { e.Data = "!!!" + e.Data }),
		"ShortNonce":    rewrap(func(e *testEnvelope) { e.Nonce = base64.StdEncoding.EncodeToString(make([]byte, 12)) }),
		"ExtraMember":   append(bytes.TrimSuffix(good, []byte("}")), []byte(`,"x":"y"}`)...),
		"MissingMember": []byte(`{"filesession":"aes-256-gcm-v1","kid":"` + env.Kid + `","nonce":"` + env.Nonce + `"}`),
		"NotJSON":       []byte("\x00\x01garbage"),
	} {
		t.Run(name, func(t *testing.T) {
			write(t, b)
			_, err := e.s.Load(e.ctx, id)
			if !errors.Is(err, filesession.ErrCorrupt) {
				t.Errorf("Load: %v, want corrupt", err)
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Errorf("not quarantined: %v", err)
			}
		})
	}
}

func TestPlaintextAndEncryptedStoresApart(t *testing.T) {
	t.Run("PlaintextFileInEncryptedStore", func(t *testing.T) {
		dir := t.TempDir()
		clock := storetest.NewClock(encStart)
		plain := openEnc(t, dir, clock, filestore.Options{})
		id := plain.create()
		e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
		before := snapshotDir(t, dir)
		_, err := e.s.Load(e.ctx, id)
		wantNotFoundBecause(t, "Load", err, filestore.ErrPlaintextFile)
		wantNotFoundBecause(t, "Save", e.s.Save(e.ctx, id, filesession.Change{At: clock.Now()}), filestore.ErrPlaintextFile)
		if err := e.s.List(e.ctx, func(string, filesession.Record) error {
			t.Error("List reported a plaintext file in an encrypted store")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		wantDirUnchanged(t, dir, before)
		if !strings.Contains(e.logs.String(), "plaintext session file in a store that requires encryption") {
			t.Errorf("no warning:\n%s", e.logs)
		}
	})
	t.Run("EncryptedFileInPlaintextStore", func(t *testing.T) {
		dir := t.TempDir()
		clock := storetest.NewClock(encStart)
		enc := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
		id := enc.create()
		e := openEnc(t, dir, clock, filestore.Options{})
		before := snapshotDir(t, dir)
		_, err := e.s.Load(e.ctx, id)
		wantNotFoundBecause(t, "Load", err, filestore.ErrEncryptedFile)
		wantDirUnchanged(t, dir, before)
		if !strings.Contains(e.logs.String(), "encrypted session file in a store that has no encryption keys") {
			t.Errorf("no warning:\n%s", e.logs)
		}
	})
	t.Run("ValueNamedFilesessionIsNotAnEnvelope", func(t *testing.T) {
		// The envelope is told apart by its first member; a session value
		// of the same name comes after the cookie.
		e := openEnc(t, "", nil, filestore.Options{})
		id := filesession.NewID()
		r := e.record()
		r.Values["filesession"] = json.RawMessage(`"aes-256-gcm-v1"`)
		if err := e.s.Create(e.ctx, id, r); err != nil {
			t.Fatal(err)
		}
		if got, err := e.s.Load(e.ctx, id); err != nil || string(got.Values["filesession"]) != `"aes-256-gcm-v1"` {
			t.Errorf("Load: %+v, %v", got.Values, err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(encStart)
	oldKey, newK := newKey(t), newKey(t)

	old := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{oldKey}})
	saved, untouched := old.create(), old.create()
	old.s.Close()

	// Step 1: the new key first, the old one still in the ring. Nobody is
	// logged out, and a save moves its session to the new key.
	both := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newK, oldKey}})
	for _, id := range []string{saved, untouched} {
		if _, err := both.s.Load(both.ctx, id); err != nil {
			t.Fatalf("Load during rotation: %v", err)
		}
	}
	savedPath := filepath.Join(dir, "sess_"+saved+".json")
	untouchedPath := filepath.Join(dir, "sess_"+untouched+".json")
	if k := envelopeOf(t, savedPath).Kid; k != kidOf(oldKey) {
		t.Errorf("Load rewrote the file: kid %s", k)
	}
	clock.Advance(time.Minute)
	if err := both.s.Save(both.ctx, saved, filesession.Change{Set: map[string]json.RawMessage{"n": json.RawMessage(`1`)}, At: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := both.s.Touch(both.ctx, untouched, clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k := envelopeOf(t, savedPath).Kid; k != kidOf(newK) {
		t.Errorf("after Save: kid %s, want the new key's %s", k, kidOf(newK))
	}
	if k := envelopeOf(t, untouchedPath).Kid; k != kidOf(oldKey) {
		t.Errorf("Touch rewrote the file: kid %s", k)
	}
	decryptFile(t, savedPath, newK)
	// A new session is written with the new key.
	fresh := both.create()
	if k := envelopeOf(t, filepath.Join(dir, "sess_"+fresh+".json")).Kid; k != kidOf(newK) {
		t.Errorf("new session: kid %s", k)
	}
	both.s.Close()

	// Step 2: the old key dropped too early: the saved session lives on,
	// the one only touched since is gone (not found, file untouched).
	only := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newK}})
	if r, err := only.s.Load(only.ctx, saved); err != nil || string(r.Values["n"]) != "1" {
		t.Errorf("saved session after dropping the old key: %+v, %v", r.Values, err)
	}
	before := stateOf(t, untouchedPath)
	_, err := only.s.Load(only.ctx, untouched)
	wantNotFoundBecause(t, "Load of an old-key file without the old key", err, filestore.ErrUndecryptable)
	if !stateOf(t, untouchedPath).equal(before) {
		t.Error("the old-key file changed")
	}
}

func TestHashNames(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "Plaintext", true: "Encrypted"}[encrypted], func(t *testing.T) {
			o := filestore.Options{HashNames: true}
			if encrypted {
				o.EncryptionKeys = [][]byte{newKey(t)}
			}
			e := openEnc(t, "", nil, o)
			ids := map[string]bool{}
			for range 3 {
				ids[e.create()] = true
			}
			for _, name := range e.sessionFiles() {
				key := strings.TrimSuffix(strings.TrimPrefix(name, "sess_"), ".json")
				if !filesession.ValidID(key, filesession.IDLength) {
					t.Errorf("hashed name %s is not an ID-shaped hash", name)
				}
				if ids[key] {
					t.Errorf("file %s is named by its session ID", name)
				}
				raw := readQuietly(t, filepath.Join(e.dir, name))
				for id := range ids {
					if encrypted && bytes.Contains(raw, []byte(id)) {
						t.Errorf("an ID is in clear in an encrypted file")
					}
				}
			}
			listed := map[string]bool{}
			if err := e.s.List(e.ctx, func(id string, r filesession.Record) error {
				listed[id] = true
				if _, ok := r.Values["__id"]; ok {
					t.Error("the __id member leaked into Values")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(listed) != 3 || !func() bool {
				for id := range ids {
					if !listed[id] {
						return false
					}
				}
				return true
			}() {
				t.Errorf("List: %v, want %v", listed, ids)
			}

			// Renew writes the new ID into the new file, once.
			var one string
			for id := range ids {
				one = id
				break
			}
			newID := filesession.NewID()
			if err := e.s.Renew(e.ctx, one, newID, filesession.Change{At: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := e.s.Save(e.ctx, newID, filesession.Change{Set: map[string]json.RawMessage{"k": json.RawMessage(`1`)}, At: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.s.Load(e.ctx, one); !errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("old ID after Renew: %v", err)
			}
			r, err := e.s.Load(e.ctx, newID)
			if err != nil || string(r.Values["k"]) != "1" {
				t.Fatalf("renewed: %v", err)
			}
			if !encrypted {
				var found bool
				for _, name := range e.sessionFiles() {
					raw := readQuietly(t, filepath.Join(e.dir, name))
					if bytes.Contains(raw, []byte(newID)) {
						found = true
						if n := bytes.Count(raw, []byte(`"__id":`)); n != 1 || !bytes.HasSuffix(raw, []byte(`,"__id":"`+newID+`"}`)) {
							t.Errorf("__id members: %d, file:\n%s", n, raw)
						}
						if bytes.Contains(raw, []byte(one)) {
							t.Errorf("the renewed file still holds the old ID:\n%s", raw)
						}
					}
				}
				if !found {
					t.Error("no file holds the renewed ID")
				}
			}

			// Inspect by ID finds the hashed file; Scan reports IDs of the
			// files it reads.
			ent, err := e.s.Inspect(e.ctx, newID)
			if err != nil || ent.ID != newID || ent.Kind != filestore.KindLive || !strings.Contains(ent.Name, "sess_") || strings.Contains(ent.Name, newID) {
				t.Errorf("Inspect: %+v, %v", ent, err)
			}
			scanned := map[string]bool{}
			if err := e.s.Scan(e.ctx, filestore.ScanOptions{ReadAll: true}, func(en *filestore.Entry) error {
				if en.Kind == filestore.KindLive {
					scanned[en.ID] = true
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(scanned) != 3 || !scanned[newID] {
				t.Errorf("Scan IDs: %v", scanned)
			}
			if err := e.s.Scan(e.ctx, filestore.ScanOptions{}, func(en *filestore.Entry) error {
				if en.Kind == filestore.KindLive && !en.Read && en.ID != "" {
					t.Errorf("Scan gave the unread file %s the ID %q: under HashNames a name is not an ID", en.Name, en.ID)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.s.Delete(e.ctx, newID); err != nil {
				t.Fatal(err)
			}
			if n := len(e.sessionFiles()); n != 2 {
				t.Errorf("%d files after Delete, want 2", n)
			}
		})
	}
}

func TestHashNamesDetectsMovedFiles(t *testing.T) {
	// Without encryption, __id is what binds a file to its name.
	e := openEnc(t, "", nil, filestore.Options{HashNames: true})
	a, b := e.create(), e.create()
	names := e.sessionFiles()
	pa, pb := filepath.Join(e.dir, names[0]), filepath.Join(e.dir, names[1])
	da, _ := os.ReadFile(pa)
	db, _ := os.ReadFile(pb)
	os.WriteFile(pa, db, 0o600)
	os.WriteFile(pb, da, 0o600)
	// And a file without __id, as a store without HashNames writes it.
	plain := openEnc(t, e.dir, e.clock, filestore.Options{})
	legacy := plain.create()
	before := snapshotDir(t, e.dir)
	for _, id := range []string{a, b} {
		_, err := e.s.Load(e.ctx, id)
		wantNotFoundBecause(t, "Load of a swapped file", err, filestore.ErrNameMismatch)
	}
	// The legacy file sits at its ID's name, which under HashNames is
	// some other session's hash: not found, not quarantined.
	if err := e.s.List(e.ctx, func(id string, _ filesession.Record) error {
		t.Errorf("List reported %s", id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Load(e.ctx, legacy); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("legacy ID: %v", err)
	}
	wantDirUnchanged(t, e.dir, before)
	if !strings.Contains(e.logs.String(), "__id does not match its hashed name") {
		t.Errorf("no warning:\n%s", e.logs)
	}
}

func TestNameKey(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	clock := storetest.NewClock(encStart)
	id := filesession.NewID()
	for _, c := range []struct {
		dir string
		key []byte
	}{{dir1, nil}, {dir2, bytes.Repeat([]byte{7}, 32)}} {
		e := openEnc(t, c.dir, clock, filestore.Options{HashNames: true, NameKey: c.key})
		if err := e.s.Create(e.ctx, id, e.record()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Load(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	n1, _ := os.ReadDir(dir1)
	n2, _ := os.ReadDir(dir2)
	name := func(ents []os.DirEntry) string {
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), "sess_") {
				return de.Name()
			}
		}
		return ""
	}
	if name(n1) == "" || name(n1) == name(n2) {
		t.Errorf("NameKey did not change the name: %s, %s", name(n1), name(n2))
	}
	// The unkeyed name is the documented hash.
	sum := sha256.Sum256(append([]byte("filesession/filestore session file name\x00\x00"), id...))
	if want := "sess_" + base64.RawURLEncoding.EncodeToString(sum[:])[:filesession.IDLength] + ".json"; name(n1) != want {
		t.Errorf("unkeyed name %s, want %s", name(n1), want)
	}
}

func TestEncryptionOptionsRefused(t *testing.T) {
	k := newKey(t)
	for name, o := range map[string]filestore.Options{
		"ShortKey":            {EncryptionKeys: [][]byte{k[:16]}},
		"LongKey":             {EncryptionKeys: [][]byte{append(bytes.Clone(k), 0)}},
		"EmptyKey":            {EncryptionKeys: [][]byte{{}}},
		"ZeroKey":             {EncryptionKeys: [][]byte{make([]byte, 32)}},
		"SameKeyTwice":        {EncryptionKeys: [][]byte{k, bytes.Clone(k)}},
		"KeysWithNode":        {EncryptionKeys: [][]byte{k}, NodeCompatible: true},
		"HashNamesWithNode":   {HashNames: true, NodeCompatible: true},
		"HashNamesShortIDs":   {HashNames: true, IDLength: 16},
		"NameKeyWithoutHash":  {NameKey: bytes.Repeat([]byte{1}, 32)},
		"NameKeyTooShort":     {HashNames: true, NameKey: []byte("short")},
		"ExpressWithKeys":     func() filestore.Options { o := filestore.ExpressOptions(""); o.EncryptionKeys = [][]byte{k}; return o }(),
		"ExpressWithHashName": func() filestore.Options { o := filestore.ExpressOptions(""); o.HashNames = true; return o }(),
	} {
		t.Run(name, func(t *testing.T) {
			o.Path = t.TempDir()
			o.Logger = quiet
			if s, err := filestore.Open(o); err == nil {
				s.Close()
				t.Error("Open succeeded")
			}
		})
	}
	// The caller's key slice may be reused: the store keeps a copy.
	key := newKey(t)
	e := openEnc(t, "", nil, filestore.Options{EncryptionKeys: [][]byte{key}})
	saved := bytes.Clone(key)
	id := e.create()
	clear(key)
	if _, err := e.s.Load(e.ctx, id); err != nil {
		t.Errorf("Load after the caller cleared its key: %v", err)
	}
	decryptFile(t, e.onlyFile(), saved)
}

func TestEncryptionMaxSizeCountsTheEnvelope(t *testing.T) {
	// A record whose plaintext fits MaxSize but whose envelope (base64,
	// tag, members) does not is too large, and nothing is written: a
	// file over MaxSize could never be read back.
	key := newKey(t)
	const maxSize = 4096
	e := openEnc(t, "", nil, filestore.Options{EncryptionKeys: [][]byte{key}, MaxSize: maxSize})
	r := e.record()
	r.Values["big"] = json.RawMessage(`"` + strings.Repeat("x", 3500) + `"`)
	id := filesession.NewID()
	err := e.s.Create(e.ctx, id, r)
	if !errors.Is(err, filesession.ErrTooLarge) {
		t.Fatalf("Create: %v, want ErrTooLarge", err)
	}
	if names := e.sessionFiles(); len(names) != 0 {
		t.Errorf("files after a refused Create: %v", names)
	}
	r.Values["big"] = json.RawMessage(`"` + strings.Repeat("x", 2500) + `"`)
	if err := e.s.Create(e.ctx, id, r); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Load(e.ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedReapAndScan(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(encStart)
	key := newKey(t)
	e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{key}})
	short := e.record()
	short.IdleTimeout = 10 * time.Minute
	shortID := filesession.NewID()
	if err := e.s.Create(e.ctx, shortID, short); err != nil {
		t.Fatal(err)
	}
	longID := e.create()
	other := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	foreign := other.create()

	kinds := map[string]filestore.Kind{}
	var foreignErr error
	if err := e.s.Scan(e.ctx, filestore.ScanOptions{ReadAll: true}, func(en *filestore.Entry) error {
		kinds[en.ID] = en.Kind
		if en.ID == foreign {
			foreignErr = en.Err
			if en.Reap != filestore.ReapKeep {
				t.Errorf("Scan says the reaper would %v a file no key opens", en.Reap)
			}
		}
		if en.ID == longID && string(en.Record.Values["secret"]) != `"`+secretValue+`"` {
			t.Errorf("Scan did not decrypt: %+v", en.Record.Values)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if kinds[shortID] != filestore.KindLive || kinds[longID] != filestore.KindLive || kinds[foreign] != filestore.KindUnreadable {
		t.Errorf("Scan kinds: %v", kinds)
	}
	if !errors.Is(foreignErr, filestore.ErrUndecryptable) {
		t.Errorf("Scan Err for a foreign-key file: %v", foreignErr)
	}
	if ent, err := e.s.Inspect(e.ctx, foreign); err != nil || ent.Kind != filestore.KindUnreadable {
		t.Errorf("Inspect of a foreign-key file: %+v, %v", ent, err)
	}

	clock.Advance(30 * time.Minute)
	n, err := e.s.Reap(e.ctx)
	if err != nil || n != 1 {
		t.Errorf("Reap: %d, %v; want the short session reaped", n, err)
	}
	if _, err := e.s.Load(e.ctx, longID); err != nil {
		t.Errorf("long session after Reap: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sess_"+shortID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("short session's file: %v", err)
	}
	// An operator's Quarantine moves neither a valid encrypted session nor
	// a file no key opens: another key may open it, so it is left alone as
	// the store leaves it alone.
	if err := e.s.Quarantine(e.ctx, longID); err == nil {
		t.Error("Quarantine moved a valid encrypted session")
	}
	foreignPath := filepath.Join(dir, "sess_"+foreign+".json")
	before := stateOf(t, foreignPath)
	if err := e.s.Quarantine(e.ctx, foreign); !errors.Is(err, filestore.ErrUndecryptable) {
		t.Errorf("Quarantine of a foreign-key file: %v, want a refusal for ErrUndecryptable", err)
	}
	if !stateOf(t, foreignPath).equal(before) {
		t.Error("Quarantine changed a file no key opens")
	}
}

// TestConformanceEncrypted runs the store contract with encryption, hashed
// names, and both.
func TestConformanceEncrypted(t *testing.T) {
	cases := map[string]func(t *testing.T) filestore.Options{
		"Encrypted": func(t *testing.T) filestore.Options {
			return filestore.Options{EncryptionKeys: [][]byte{newKey(t), newKey(t)}}
		},
		"HashNames": func(t *testing.T) filestore.Options { return filestore.Options{HashNames: true} },
		"EncryptedHashNames": func(t *testing.T) filestore.Options {
			return filestore.Options{EncryptionKeys: [][]byte{newKey(t)}, HashNames: true, NameKey: newKey(t)}
		},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
				o := opts(t)
				o.Path, o.Now, o.Sync, o.Logger = t.TempDir(), now, filestore.SyncNone, quiet
				s, err := filestore.Open(o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
	t.Run("HashNamesShortIDs", func(t *testing.T) {
		storetest.RunWith(t, storetest.Config{IDLength: 32}, func(t *testing.T, now func() time.Time) filesession.Store {
			s, err := filestore.Open(filestore.Options{Path: t.TempDir(), Now: now, Sync: filestore.SyncNone, Logger: quiet,
				IDLength: 32, HashNames: true, EncryptionKeys: [][]byte{newKey(t)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// FuzzOpenEnvelope feeds arbitrary file contents to an encrypted store:
// whatever is on disk, Load returns a session, not found, or corrupt, and
// never panics.
func FuzzOpenEnvelope(f *testing.F) {
	key := bytes.Repeat([]byte{0x42}, 32)
	dir := f.TempDir()
	s, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet, Sync: filestore.SyncNone, EncryptionKeys: [][]byte{key}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	id := filesession.NewID()
	if err := s.Create(context.Background(), id, filesession.Record{Values: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "sess_"+id+".json")
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add([]byte(`{"filesession":"aes-256-gcm-v1"}`))
	f.Add([]byte(`{"filesession":"aes-256-gcm-v1","kid":"00000000","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","data":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"cookie":{},"__lastAccess":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		os.Remove(path + ".corrupt")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(context.Background(), id)
		if err != nil && !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Load: %v, want a session, not found or corrupt", err)
		}
	})
}
