package filestore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
)

// The helpers (openEnc, decryptFile, kidOf, stateOf, ...) are in
// encrypt_test.go.

func TestRekey(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(encStart)
	oldKey, newK := newKey(t), newKey(t)
	old := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{oldKey}})
	var ids []string
	for range 3 {
		ids = append(ids, old.create())
	}
	clock.Advance(time.Minute)
	if err := old.s.Touch(old.ctx, ids[0], clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	old.s.Close()
	// A file of a key nobody has: skipped, left alone.
	stranger := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newKey(t)}})
	lost := stranger.create()
	stranger.s.Close()
	lostPath := filepath.Join(dir, "sess_"+lost+".json")
	lostBefore := stateOf(t, lostPath)

	both := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newK, oldKey}})
	plainBefore := map[string][]byte{}
	timesBefore := map[string]fileState{}
	for _, id := range ids {
		p := filepath.Join(dir, "sess_"+id+".json")
		plainBefore[id] = decryptFile(t, p, oldKey)
		timesBefore[id] = stateOf(t, p)
	}
	res, err := both.s.Rekey(both.ctx, filestore.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (filestore.RekeyResult{Rewritten: 3, Skipped: 1}) {
		t.Errorf("Rekey: %+v", res)
	}
	for _, id := range ids {
		p := filepath.Join(dir, "sess_"+id+".json")
		if k := envelopeOf(t, p).Kid; k != kidOf(newK) {
			t.Errorf("after Rekey: kid %s", k)
		}
		if got := decryptFile(t, p, newK); !bytes.Equal(got, plainBefore[id]) {
			t.Errorf("Rekey changed the plaintext:\n%s\n%s", plainBefore[id], got)
		}
		if st := stateOf(t, p); st.mtime != timesBefore[id].mtime || st.atime != timesBefore[id].atime {
			t.Errorf("Rekey moved the file's times")
		}
	}
	if !stateOf(t, lostPath).equal(lostBefore) {
		t.Error("Rekey changed a file no key opens")
	}
	// A second pass has nothing to do.
	if res, err := both.s.Rekey(both.ctx, filestore.RekeyOptions{}); err != nil || res != (filestore.RekeyResult{Current: 3, Skipped: 1}) {
		t.Errorf("second Rekey: %+v, %v", res, err)
	}
	both.s.Close()

	only := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{newK}})
	for _, id := range ids {
		if _, err := only.s.Load(only.ctx, id); err != nil {
			t.Errorf("Load after Rekey without the old key: %v", err)
		}
	}

	t.Run("Plaintext", func(t *testing.T) {
		dir := t.TempDir()
		plain := openEnc(t, dir, clock, filestore.Options{})
		id := plain.create()
		if err := os.WriteFile(filepath.Join(dir, "sess_"+filesession.NewID()+".json"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		plain.s.Close()
		key := newKey(t)
		e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{key}})
		if res, err := e.s.Rekey(e.ctx, filestore.RekeyOptions{}); err != nil || res != (filestore.RekeyResult{Skipped: 2}) {
			t.Errorf("Rekey without Plaintext: %+v, %v", res, err)
		}
		if res, err := e.s.Rekey(e.ctx, filestore.RekeyOptions{Plaintext: true}); err != nil || res != (filestore.RekeyResult{Rewritten: 1, Skipped: 1}) {
			t.Errorf("Rekey with Plaintext: %+v, %v", res, err)
		}
		if r, err := e.s.Load(e.ctx, id); err != nil || string(r.Values["secret"]) != `"`+secretValue+`"` {
			t.Errorf("Load of a migrated session: %+v, %v", r.Values, err)
		}
		raw := readQuietly(t, filepath.Join(dir, "sess_"+id+".json"))
		if bytes.Contains(raw, []byte(secretValue)) {
			t.Error("the migrated file is still plaintext")
		}
	})

	t.Run("HashNames", func(t *testing.T) {
		dir := t.TempDir()
		k1, k2 := newKey(t), newKey(t)
		old := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{k1}, HashNames: true})
		id := old.create()
		old.s.Close()
		e := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{k2, k1}, HashNames: true})
		if res, err := e.s.Rekey(e.ctx, filestore.RekeyOptions{}); err != nil || res != (filestore.RekeyResult{Rewritten: 1}) {
			t.Errorf("Rekey: %+v, %v", res, err)
		}
		e.s.Close()
		only := openEnc(t, dir, clock, filestore.Options{EncryptionKeys: [][]byte{k2}, HashNames: true})
		if _, err := only.s.Load(only.ctx, id); err != nil {
			t.Errorf("Load after Rekey: %v", err)
		}
	})

	t.Run("NeedsKeys", func(t *testing.T) {
		e := openEnc(t, "", nil, filestore.Options{})
		if _, err := e.s.Rekey(e.ctx, filestore.RekeyOptions{}); err == nil {
			t.Error("Rekey of a store without keys succeeded")
		}
	})
}

// Open a store that encrypts its files, in the middle of a key rotation:
// the new key encrypts, the old one still decrypts. Keys come from the
// deployment's secrets, never from the session directory.
func ExampleOptions_encryptionKeys() {
	newKey, oldKey := loadKey("SESSION_KEY"), loadKey("SESSION_KEY_OLD")
	s, err := filestore.Open(filestore.Options{
		Path:           "/var/lib/myapp/sessions",
		EncryptionKeys: [][]byte{newKey, oldKey},
		HashNames:      true,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	// Once every process has the new key first: re-encrypt what is left,
	// then drop oldKey from the ring.
	if _, err := s.Rekey(context.Background(), filestore.RekeyOptions{}); err != nil {
		panic(err)
	}
}

// loadKey decodes a base64 key of 32 bytes from the environment.
func loadKey(name string) []byte {
	k, err := base64.StdEncoding.DecodeString(os.Getenv(name))
	if err != nil || len(k) != filestore.KeySize {
		panic(name + " must be 32 random bytes in base64")
	}
	return k
}
