package main

// In-process tests of the pieces that bound memory (the external sort, the
// top-users summary, the size counts) and of the progress display, which
// the binary shows only on a terminal.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRowSorterSpillsAndMerges(t *testing.T) {
	less, err := lsOrder("last-seen", false)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_800_000_000, 0)
	var want []row
	for i := range 5000 {
		want = append(want, row{
			ID: fmt.Sprintf("id%05d", i), Label: fmt.Sprintf("user%d@example.com", i%37),
			User: []byte(`{"email":"x"}`), LastSeen: base.Add(time.Duration(rand.IntN(1000)) * time.Second),
			Created: base, Expires: base.Add(time.Hour), Size: int64(i),
		})
	}
	for _, budget := range []int{1 << 30, 1 << 12} { // in memory; ~250 runs, merged in passes of maxFanIn
		s := newRowSorter(less, budget)
		shuffled := slices.Clone(want)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, r := range shuffled {
			if err := s.add(r); err != nil {
				t.Fatal(err)
			}
		}
		var got []row
		if err := s.each(func(r *row) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		dir := s.dir
		s.close()
		if budget == 1<<30 && dir != "" {
			t.Error("rows that fit the budget were written to disk")
		}
		if budget != 1<<30 && dir == "" {
			t.Error("rows over the budget were not spilled")
		}
		if dir != "" {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("runs left behind in %s", dir)
			}
		}
		if len(got) != len(want) || !slices.IsSortedFunc(got, func(a, b row) int { return less(&a, &b) }) {
			t.Fatalf("budget %d: %d rows, sorted %v", budget, len(got), slices.IsSortedFunc(got, func(a, b row) int { return less(&a, &b) }))
		}
		ids := map[string]bool{}
		for _, r := range got {
			ids[r.ID] = true
			if r.Label == "" || string(r.User) != `{"email":"x"}` || !r.Created.Equal(base) {
				t.Fatalf("row lost fields on the way through disk: %+v", r)
			}
		}
		if len(ids) != len(want) {
			t.Errorf("budget %d: %d distinct rows, want %d", budget, len(ids), len(want))
		}
	}
}

func TestTopUsers(t *testing.T) {
	// Exact while the users fit.
	u := newTopUsers(10)
	for i := range 9 {
		for range i + 1 {
			u.add(fmt.Sprint("u", i))
		}
	}
	top := u.top(3)
	if u.evicted || len(top) != 3 || top[0].user != "u8" || top[0].count != 9 || top[2].user != "u6" || top[2].count != 7 {
		t.Errorf("top = %+v", top)
	}
	// Beyond capacity: a heavy user among 100,000 one-session users is
	// found, and its count is right to within the stated error.
	u = newTopUsers(100)
	for i := range 100_000 {
		u.add(fmt.Sprint("one-", i))
		if i%10 == 0 {
			u.add("bot")
		}
	}
	top = u.top(1)
	if !u.evicted || top[0].user != "bot" || top[0].count < 10_000 || top[0].count-top[0].err > 10_000 {
		t.Errorf("heavy hitter = %+v", top)
	}
}

func TestSizePercentiles(t *testing.T) {
	s := newSizeCounts()
	var sizes []int64
	for i := range 1000 {
		n := int64(100 + i*i%70000) // some above maxExact
		sizes = append(sizes, n)
		s.add(n)
	}
	slices.Sort(sizes)
	for _, q := range []float64{0.5, 0.9} {
		want := sizes[int(q*1000+0.5)-1]
		got := s.percentile(q)
		if want < maxExact && got != want || want >= maxExact && (got < want || got > want+1023) {
			t.Errorf("p%v = %d, want %d", q*100, got, want)
		}
	}
	if s.max != sizes[len(sizes)-1] || s.n != 1000 {
		t.Errorf("max %d, n %d", s.max, s.n)
	}
}

func TestProgressLine(t *testing.T) {
	p := &progress{label: "verify", start: time.Unix(0, 0)}
	p.total.Store(200)
	p.done.Store(50)
	got := p.line(time.Unix(3, 0))
	if got != "verify [=======                       ]  25% 50/200 3s" {
		t.Errorf("bar = %q", got)
	}
	p.total.Store(0)
	if got := p.line(time.Unix(3, 0)); got != "verify 50 3s" {
		t.Errorf("counter = %q", got)
	}
	// Off the terminal, progress is nil and every method a no-op.
	var off *progress
	off.add(1)
	off.setTotal(2)
	off.finish()
	c := &cli{stderrFile: &strings.Builder{}}
	if c.newProgress("x", 1) != nil {
		t.Error("progress shown on a non-terminal")
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "")
	dir := fs.String("dir", "", "")
	id := "-1Ml4CDUwdY8M6Mg53tbee5QPHeOAayKqREck9z8OqQ"
	pos, err := parseInterspersed(fs, []string{"a", "--dry-run", id, "b", "--dir", "d", "--", "--not-a-flag"})
	if err != nil || !*dry || *dir != "d" || !slices.Equal(pos, []string{"a", id, "b", "--not-a-flag"}) {
		t.Errorf("parse = %v, %v, dry %v, dir %q", pos, err, *dry, *dir)
	}
	*dir = ""
	if pos, err := parseInterspersed(fs, []string{"--dir=x", "-dry-run=false", "c"}); err != nil || *dir != "x" || *dry || !slices.Equal(pos, []string{"c"}) {
		t.Errorf("parse with = forms: %v, %v, dir %q, dry %v", pos, err, *dir, *dry)
	}
	if _, err := parseInterspersed(fs, []string{"--dry-rn"}); err == nil {
		t.Error("a mistyped flag was taken for an argument")
	}
	if _, err := parseInterspersed(fs, []string{"--dir"}); err == nil {
		t.Error("a flag missing its value was accepted")
	}
}

func TestDurText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:      "30s",
		90 * time.Minute:      "1h30m",
		-2 * time.Hour:        "-2h",
		50 * time.Hour:        "2d2h",
		3*time.Minute + 400e6: "3m",
	} {
		if got := durText(d); got != want {
			t.Errorf("durText(%v) = %q, want %q", d, got, want)
		}
	}
}
