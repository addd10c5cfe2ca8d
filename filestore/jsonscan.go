package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// This file holds the small JSON layer of the stored format. The store never
// decodes session values: it splits the top-level object into (key, raw
// bytes) members, validating every byte as it goes, and writes files by
// concatenating members. That is what lets a rewrite keep every member it did
// not change byte for byte, and what keeps values exactly as the caller gave
// them (no HTML escaping, no float64 round trip, no key sorting), which
// encoding/json's map decoding cannot promise.

// errSyntax reports a file or value that is not valid JSON.
var errSyntax = errors.New("malformed JSON")

// maxDepth bounds nesting, like encoding/json, so that a hostile file of
// "[[[[..." cannot exhaust the stack.
const maxDepth = 10000

// scanner validates JSON text in place. It never allocates.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value skips one JSON value starting at s.i (after whitespace), checking
// its syntax.
func (s *scanner) value(depth int) error {
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		if depth >= maxDepth {
			return errSyntax
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return errSyntax
			}
			if _, err := s.str(); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return errSyntax
			}
			s.i++
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) {
				return errSyntax
			}
			switch s.b[s.i] {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == '[':
		if depth >= maxDepth {
			return errSyntax
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) {
				return errSyntax
			}
			switch s.b[s.i] {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return errSyntax
}

func (s *scanner) lit(want string) error {
	if len(s.b)-s.i < len(want) || string(s.b[s.i:s.i+len(want)]) != want {
		return errSyntax
	}
	s.i += len(want)
	return nil
}

// str skips a string starting at the opening quote at s.i and reports
// whether it contains escapes.
func (s *scanner) str() (escaped bool, err error) {
	s.i++ // opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return false, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false, errSyntax
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return false, errSyntax
					}
				}
				s.i += 6
			default:
				return false, errSyntax
			}
		case c < 0x20:
			return false, errSyntax
		default:
			s.i++
		}
	}
	return false, errSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// scanObject calls fn for each member of the JSON object that makes up all
// of b (surrounding whitespace allowed), in order, with the key's bytes
// between the quotes (escaped says whether they hold escapes) and the
// value's exact bytes. Anything else in b, or invalid JSON anywhere in it,
// is errSyntax: a truncated or appended-to file never passes.
func scanObject(b []byte, fn func(key []byte, escaped bool, val []byte) error) error {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return errSyntax
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
	} else {
		for {
			s.ws()
			if s.i >= len(b) || b[s.i] != '"' {
				return errSyntax
			}
			kstart := s.i + 1
			escaped, err := s.str()
			if err != nil {
				return err
			}
			key := b[kstart : s.i-1]
			s.ws()
			if s.i >= len(b) || b[s.i] != ':' {
				return errSyntax
			}
			s.i++
			s.ws()
			vstart := s.i
			if err := s.value(1); err != nil {
				return err
			}
			if err := fn(key, escaped, b[vstart:s.i:s.i]); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(b) {
				return errSyntax
			}
			if b[s.i] == ',' {
				s.i++
				continue
			}
			if b[s.i] != '}' {
				return errSyntax
			}
			s.i++
			break
		}
	}
	s.ws()
	if s.i != len(b) {
		return errSyntax
	}
	return nil
}

// decodeKey returns the text of a member key as scanObject gave it.
func decodeKey(key []byte, escaped bool) (string, error) {
	if !escaped {
		return string(key), nil
	}
	return unquote(key)
}

// unquote decodes the inside of a JSON string with escapes; it is the rare
// path, so it leans on encoding/json.
func unquote(inner []byte) (string, error) {
	q := make([]byte, 0, len(inner)+2)
	q = append(append(append(q, '"'), inner...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

// stringValue returns the text of a JSON string value (raw includes the
// quotes), or ok false if raw is not a string.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	s, err := unquote(inner)
	return s, err == nil
}

// millisValue returns a JSON number of milliseconds, or ok false if raw is
// not a finite number. JavaScript writes Date.getTime() as an integer, but
// any number is accepted.
func millisValue(raw []byte) (int64, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// compactValue validates a value the caller gave and appends it to dst
// without insignificant whitespace. It does not touch the bytes of strings
// or numbers: the conformance suite (and Node interop) wants values back
// byte for byte.
func compactValue(dst, raw []byte) ([]byte, error) {
	s := scanner{b: raw}
	if err := s.value(0); err != nil {
		return dst, errSyntax
	}
	s.ws()
	if s.i != len(raw) {
		return dst, errSyntax
	}
	if !hasSpaceOutsideStrings(raw) {
		return append(dst, raw...), nil
	}
	var buf bytes.Buffer
	// json.Compact neither HTML-escapes nor touches U+2028/U+2029 (only
	// json.Marshal and HTMLEscape do).
	if err := json.Compact(&buf, raw); err != nil {
		return dst, errSyntax
	}
	return append(dst, buf.Bytes()...), nil
}

// hasSpaceOutsideStrings reports whether valid JSON raw contains whitespace
// that compacting would remove.
func hasSpaceOutsideStrings(raw []byte) bool {
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if in {
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
		case ' ', '\t', '\n', '\r':
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string exactly as JavaScript's
// JSON.stringify writes it: only '"', '\\' and U+0000–U+001F are escaped
// (\b \f \n \r \t, or \u00xx in lower-case hex); '<', '>', '&', U+2028 and
// U+2029 are written raw, unlike encoding/json. Invalid UTF-8 becomes
// U+FFFD, which is what Node's decoder would make of it.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendISO appends t as JavaScript's Date.prototype.toJSON writes it:
// "2026-12-04T11:00:00.000Z".
func appendISO(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	return append(dst, '"')
}

// appendMillis appends t as an integer of Unix milliseconds.
func appendMillis(dst []byte, t time.Time) []byte {
	return strconv.AppendInt(dst, t.UnixMilli(), 10)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
