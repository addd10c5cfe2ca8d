package filestore

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzScanner checks the store's JSON scanner against encoding/json: a file
// is accepted exactly when it is valid JSON whose top level is an object,
// each member's bytes are valid JSON, and compactValue agrees with
// json.Compact.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"a":"\u2028<>&","b":[1,2.5e-3,{"c":null}],"d":true}`,
		`{"a":1,}`, `{"a"}`, `[1]`, `null`, `{"a":"\x"}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`,
		"{\"a\":\"\x01\"}", `{"a":1}{}`, `{"\u00e9":"x"}`, `{"a":[1 , 2]}`, `{"a":"\ud83c\udf89"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var members [][]byte
		err := scanObject(b, func(_ []byte, _ bool, val []byte) error {
			members = append(members, val)
			return nil
		})
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		wantOK := json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{'
		if (err == nil) != wantOK {
			t.Fatalf("scanObject(%q) = %v, json.Valid object = %v", b, err, wantOK)
		}
		for _, m := range members {
			if !json.Valid(m) {
				t.Fatalf("member %q of %q is not valid JSON", m, b)
			}
		}
		got, err := compactValue(nil, b)
		var want bytes.Buffer
		werr := json.Compact(&want, b)
		if (err == nil) != (werr == nil) {
			t.Fatalf("compactValue(%q) error %v, json.Compact error %v", b, err, werr)
		}
		if err == nil && !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactValue(%q) = %q, json.Compact = %q", b, got, want.Bytes())
		}
	})
}
