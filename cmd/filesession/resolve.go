package main

import (
	"bufio"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// minPrefix is the shortest ID prefix rm and show accept: short enough to
// type, long enough (36 bits) not to match by accident.
const minPrefix = 6

// readIDArgs expands "-" into the IDs on stdin, one per line, so that
// "filesession ls --json | jq -r '.[].id' | filesession rm -" works.
func (c *cli) readIDArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a != "-" {
			out = append(out, a)
			continue
		}
		sc := bufio.NewScanner(c.stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				out = append(out, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading IDs from stdin: %w", err)
		}
	}
	return out, nil
}

// resolveIDs turns arguments into session IDs: a whole ID, a session file's
// name (sess_<id>.json, or a path to it), or a unique prefix of at least
// minPrefix characters (found with one scan of the directory, by name and
// metadata only). Every argument must resolve, or nothing is returned.
func (c *cli) resolveIDs(s *filestore.Store, args []string) ([]string, error) {
	ids := make([]string, len(args))
	prefixes := map[string][]string{} // prefix → matching IDs
	for i, a := range args {
		a = c.stripFileName(a)
		switch {
		case filesession.ValidID(a, c.opts.idLength):
			ids[i] = a
		case len(a) >= minPrefix && len(a) < c.opts.idLength && filesession.ValidID(a, len(a)):
			prefixes[a] = nil
		default:
			return nil, usagef("%q is not a session ID (%d characters of [A-Za-z0-9_-]) or a prefix of at least %d", args[i], c.opts.idLength, minPrefix)
		}
	}
	if len(prefixes) > 0 {
		// Under hashed names only a file's contents say its ID.
		err := s.Scan(c.ctx, filestore.ScanOptions{ReadAll: c.opts.hashNames}, func(e *filestore.Entry) error {
			if e.ID == "" || e.Kind == filestore.KindTemp || e.Kind == filestore.KindQuarantined {
				return nil
			}
			for p, m := range prefixes {
				if strings.HasPrefix(e.ID, p) && len(m) < 2 {
					prefixes[p] = append(m, e.ID)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i, a := range args {
		if ids[i] != "" {
			continue
		}
		m := prefixes[c.stripFileName(a)]
		switch len(m) {
		case 0:
			return nil, fmt.Errorf("no session ID starts with %q", a)
		case 1:
			ids[i] = m[0]
		default:
			return nil, fmt.Errorf("%q is the start of several session IDs; give more of it", a)
		}
	}
	return ids, nil
}

// stripFileName returns the ID inside a session file name or path, or a
// unchanged.
func (c *cli) stripFileName(a string) string {
	if c.opts.hashNames {
		return a // a hashed name is not an ID
	}
	base := filepath.Base(a)
	prefix := c.opts.prefix
	if c.opts.noPrefix {
		prefix = ""
	}
	if strings.HasSuffix(base, c.opts.ext) && strings.HasPrefix(base, prefix) && len(base) > len(prefix)+len(c.opts.ext) {
		return base[len(prefix) : len(base)-len(c.opts.ext)]
	}
	return a
}
