package main

import (
	"bufio"
	"container/heap"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// row is one session as ls lists it.
type row struct {
	ID       string
	Label    string // the user, as a table shows it
	User     []byte // the user value as stored, JSON
	Owner    string // the record's user (Record.User)
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time
	Size     int64
	Expired  bool
}

// size estimates the memory a row takes, for the sort's budget.
func (r *row) size() int { return 160 + len(r.ID) + len(r.Label) + len(r.User) + len(r.Owner) }

// rowSorter sorts rows with bounded memory: rows are kept in memory until
// they reach budget bytes, then sorted and written to a temporary file (a
// run); at the end the runs are merged. A directory of a million sessions
// thus costs budget bytes of memory plus one buffered reader per run, and
// as much temporary disk as the listing (in $TMPDIR, never in the session
// directory). When everything fits in the budget, nothing touches the disk.
type rowSorter struct {
	less   func(a, b *row) int
	budget int

	buf     []row
	bufSize int
	dir     string   // temporary directory of the runs, made on first spill
	runs    []string // run files, each sorted
}

// maxFanIn is how many runs one merge reads at once; more are merged in
// passes, so open files and reader buffers stay bounded too.
const maxFanIn = 64

func newRowSorter(less func(a, b *row) int, budget int) *rowSorter {
	return &rowSorter{less: less, budget: budget}
}

// add adds a row.
func (s *rowSorter) add(r row) error {
	s.buf = append(s.buf, r)
	s.bufSize += r.size()
	if s.bufSize >= s.budget {
		return s.spill()
	}
	return nil
}

// sortBuf sorts the buffered rows in place (by pointer: rows are too big to
// copy for every comparison).
func (s *rowSorter) sortBuf() {
	sort.Slice(s.buf, func(i, j int) bool { return s.less(&s.buf[i], &s.buf[j]) < 0 })
}

// spill writes the buffered rows, sorted, to a new run.
func (s *rowSorter) spill() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.sortBuf()
	if s.dir == "" {
		d, err := os.MkdirTemp("", "filesession-sort-")
		if err != nil {
			return fmt.Errorf("sorting: %w", err)
		}
		s.dir = d
	}
	name := fmt.Sprintf("%s/run%06d", s.dir, len(s.runs))
	if err := writeRun(name, s.buf); err != nil {
		return err
	}
	s.runs = append(s.runs, name)
	clear(s.buf) // drop the strings, so the collector can have them
	s.buf, s.bufSize = s.buf[:0], 0
	return nil
}

func writeRun(name string, rows []row) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sorting: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	enc := gob.NewEncoder(w)
	for i := range rows {
		if err := enc.Encode(&rows[i]); err != nil {
			f.Close()
			return fmt.Errorf("sorting: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("sorting: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sorting: %w", err)
	}
	return nil
}

// each calls fn for every row in order. It may be called once.
func (s *rowSorter) each(fn func(*row) error) error {
	if len(s.runs) == 0 {
		s.sortBuf()
		for i := range s.buf {
			if err := fn(&s.buf[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.spill(); err != nil {
		return err
	}
	for len(s.runs) > maxFanIn {
		merged := fmt.Sprintf("%s/merge%06d", s.dir, len(s.runs))
		f, err := os.OpenFile(merged, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("sorting: %w", err)
		}
		w := bufio.NewWriterSize(f, 64<<10)
		enc := gob.NewEncoder(w)
		err = s.merge(s.runs[:maxFanIn], func(r *row) error { return enc.Encode(r) })
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sorting: %w", err)
		}
		for _, r := range s.runs[:maxFanIn] {
			os.Remove(r)
		}
		s.runs = append(s.runs[maxFanIn:], merged)
	}
	return s.merge(s.runs, fn)
}

// runReader is the next row of one run.
type runReader struct {
	f   *os.File
	dec *gob.Decoder
	cur row
}

type runHeap struct {
	rs   []*runReader
	less func(a, b *row) int
}

func (h *runHeap) Len() int           { return len(h.rs) }
func (h *runHeap) Less(i, j int) bool { return h.less(&h.rs[i].cur, &h.rs[j].cur) < 0 }
func (h *runHeap) Swap(i, j int)      { h.rs[i], h.rs[j] = h.rs[j], h.rs[i] }
func (h *runHeap) Push(x any)         { h.rs = append(h.rs, x.(*runReader)) }
func (h *runHeap) Pop() any {
	r := h.rs[len(h.rs)-1]
	h.rs = h.rs[:len(h.rs)-1]
	return r
}

// merge calls fn for the rows of the sorted runs names, in order.
func (s *rowSorter) merge(names []string, fn func(*row) error) error {
	h := &runHeap{less: s.less}
	defer func() {
		for _, r := range h.rs {
			r.f.Close()
		}
	}()
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("sorting: %w", err)
		}
		r := &runReader{f: f, dec: gob.NewDecoder(bufio.NewReaderSize(f, 32<<10))}
		if err := r.dec.Decode(&r.cur); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				continue
			}
			return fmt.Errorf("sorting: %w", err)
		}
		h.rs = append(h.rs, r)
	}
	heap.Init(h)
	for h.Len() > 0 {
		r := h.rs[0]
		if err := fn(&r.cur); err != nil {
			return err
		}
		r.cur = row{}
		if err := r.dec.Decode(&r.cur); err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("sorting: %w", err)
			}
			r.f.Close()
			heap.Pop(h)
			continue
		}
		heap.Fix(h, 0)
	}
	return nil
}

// close removes the runs.
func (s *rowSorter) close() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
