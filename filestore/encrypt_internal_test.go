package filestore

import (
	"bytes"
	"testing"
)

// FuzzParseCompact checks the envelope parser's fast path against the
// general one: whatever parseCompact accepts, parseGeneral accepts with the
// same fields, so the fast path changes speed, never meaning.
func FuzzParseCompact(f *testing.F) {
	c := &sealer{keys: []ringKey{{kid: keyID(bytes.Repeat([]byte{1}, KeySize)), key: bytes.Repeat([]byte{1}, KeySize)}}, idLength: 43}
	for _, n := range []int{0, 1, 100} {
		env, err := c.seal("id", bytes.Repeat([]byte("x"), n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	f.Add([]byte(`{"filesession":"aes-256-gcm-v1","kid":"0000000\u0030","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","data":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseCompact(b)
		if !ok {
			return
		}
		general, err := parseGeneral(b)
		if err != nil {
			t.Fatalf("parseCompact accepted what parseGeneral refuses (%v): %q", err, b)
		}
		if fast.alg != general.alg || fast.kid != general.kid || !bytes.Equal(fast.nonce, general.nonce) || !bytes.Equal(fast.data, general.data) {
			t.Fatalf("the parsers disagree on %q:\n%+v\n%+v", b, fast, general)
		}
	})
}

// BenchmarkSealOpen measures the CPU cost of encryption alone, without any
// file I/O: sealing and opening the envelope of a 300-byte session file
// (the per-file key derivation, AES-256-GCM, base64 and the envelope's
// JSON), and the HashNames name hash.
//
//	go test -run '^$' -bench SealOpen ./filestore
func BenchmarkSealOpen(b *testing.B) {
	c := &sealer{keys: []ringKey{{kid: keyID(bytes.Repeat([]byte{1}, KeySize)), key: bytes.Repeat([]byte{1}, KeySize)}}, idLength: 43}
	plain := []byte(`{"cookie":{"originalMaxAge":86400000,"expires":"2026-12-04T11:00:00.000Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"csrfToken":"8f14e45fceea167a5a36dedd4bea2543a1d0c6e83f027327d8461063f4ac58a6","user":{"id":12345,"name":"Alice Example"},"__created":1796292220850,"__lastAccess":1796292220850}`)
	const id = "Rb3P9kX0s4mXoQk0c0fJ3oZr6n3y7Vq8ZC1vH2kLwQ4"
	env, err := c.seal(id, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.seal(id, plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := c.open(id, env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("HashName", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.hashName(id)
		}
	})
}
