package main

import (
	"cmp"
	"container/heap"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/filesession/filesession/filestore"
)

var statsTop int

var statsCmd = &command{
	name:    "stats",
	summary: "Counts by state, session sizes, age and idle histograms, oldest and newest, top users",
	flags: func(fs *flag.FlagSet) {
		fs.IntVar(&statsTop, "top", 10, "how many users to list by number of sessions")
	},
	run: runStats,
}

// ageBuckets are the histogram buckets of session ages and idle times.
var ageBuckets = []struct {
	label string
	upTo  time.Duration
}{
	{"< 1m", time.Minute},
	{"1m-10m", 10 * time.Minute},
	{"10m-1h", time.Hour},
	{"1h-6h", 6 * time.Hour},
	{"6h-24h", 24 * time.Hour},
	{"1d-7d", 7 * 24 * time.Hour},
	{"7d-30d", 30 * 24 * time.Hour},
	{">= 30d", 1<<63 - 1},
}

// histogram counts durations into ageBuckets.
type histogram []int64

func newHistogram() histogram { return make(histogram, len(ageBuckets)) }

func (h histogram) add(d time.Duration) {
	for i, b := range ageBuckets {
		if d < b.upTo {
			h[i]++
			return
		}
	}
}

// sizeCounts counts session file sizes exactly, one counter per byte count
// up to maxExact and one per KiB above (files over MaxSize are corrupt, not
// sessions), so percentiles need no list of a million sizes.
type sizeCounts struct {
	exact []uint32
	kib   []uint32
	n     int64
	sum   int64
	max   int64
}

const maxExact = 64 << 10

func newSizeCounts() *sizeCounts {
	return &sizeCounts{exact: make([]uint32, maxExact), kib: make([]uint32, filestore.DefaultMaxSize>>10+1)}
}

func (s *sizeCounts) add(size int64) {
	s.n++
	s.sum += size
	s.max = max(s.max, size)
	switch {
	case size < maxExact:
		s.exact[size]++
	default:
		s.kib[min(size>>10, int64(len(s.kib)-1))]++
	}
}

// percentile returns the size at or below which q of the sessions are.
func (s *sizeCounts) percentile(q float64) int64 {
	if s.n == 0 {
		return 0
	}
	rank := int64(q*float64(s.n) + 0.5)
	rank = max(1, min(rank, s.n))
	var seen int64
	for size, c := range s.exact {
		if seen += int64(c); seen >= rank {
			return int64(size)
		}
	}
	for k, c := range s.kib {
		if seen += int64(c); seen >= rank {
			return int64(k+1)<<10 - 1
		}
	}
	return s.max
}

// topUsers finds the users with the most sessions in bounded memory, with
// the Space-Saving algorithm: it keeps capacity counters; a user not
// counted yet takes over the smallest counter, inheriting its count as a
// possible overestimate (err). Counts are exact while there are no more
// distinct users than capacity; beyond, every user with more than
// n/capacity sessions is sure to be listed, its count over by at most its
// err. The counters are a min-heap on count, so each session costs
// O(log capacity).
type topUsers struct {
	capacity int
	counts   map[string]*userCount
	heap     []*userCount
	evicted  bool
}

type userCount struct {
	user  string
	count int64
	err   int64
	index int // in heap
}

// topCapacity is how many users topUsers tracks.
const topCapacity = 10000

func newTopUsers(capacity int) *topUsers {
	return &topUsers{capacity: capacity, counts: make(map[string]*userCount)}
}

func (t *topUsers) Len() int           { return len(t.heap) }
func (t *topUsers) Less(i, j int) bool { return t.heap[i].count < t.heap[j].count }
func (t *topUsers) Swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.heap[i].index, t.heap[j].index = i, j
}
func (t *topUsers) Push(x any) {
	c := x.(*userCount)
	c.index = len(t.heap)
	t.heap = append(t.heap, c)
}
func (t *topUsers) Pop() any {
	c := t.heap[len(t.heap)-1]
	t.heap = t.heap[:len(t.heap)-1]
	return c
}

func (t *topUsers) add(user string) {
	if c, ok := t.counts[user]; ok {
		c.count++
		heap.Fix(t, c.index)
		return
	}
	if len(t.heap) < t.capacity {
		c := &userCount{user: user, count: 1}
		t.counts[user] = c
		heap.Push(t, c)
		return
	}
	m := t.heap[0]
	delete(t.counts, m.user)
	t.evicted = true
	m.user, m.err, m.count = user, m.count, m.count+1
	t.counts[user] = m
	heap.Fix(t, 0)
}

// top returns the n users with the most sessions.
func (t *topUsers) top(n int) []userCount {
	out := make([]userCount, 0, len(t.heap))
	for _, c := range t.heap {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b userCount) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return cmp.Compare(a.user, b.user)
	})
	return out[:min(n, len(out))]
}

// statsJSON is stats' JSON output.
type statsJSON struct {
	Counts tally `json:"counts"`
	Sizes  struct {
		Total int64 `json:"total"`
		Mean  int64 `json:"mean"`
		P50   int64 `json:"p50"`
		P90   int64 `json:"p90"`
		P99   int64 `json:"p99"`
		Max   int64 `json:"max"`
	} `json:"sizes"`
	Age    []bucketJSON `json:"age"`
	Idle   []bucketJSON `json:"idle"`
	Oldest *sessionRef  `json:"oldest"`
	Newest *sessionRef  `json:"newest"`
	Users  struct {
		WithoutUser int64      `json:"withoutUser"`
		Top         []userJSON `json:"top"`
		Approximate bool       `json:"approximate"`
	} `json:"users"`
}

type bucketJSON struct {
	Range string `json:"range"`
	Count int64  `json:"count"`
}

type sessionRef struct {
	ID      string   `json:"id"`
	Created jsonTime `json:"created"`
}

type userJSON struct {
	User     string `json:"user"`
	Sessions int64  `json:"sessions"`
	MaxError int64  `json:"maxError,omitempty"`
}

func runStats(c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("stats takes no arguments")
	}
	if statsTop < 0 {
		return usagef("--top must not be negative")
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	var total int64
	if c.progressOn() {
		total = countNames(c.opts.dir)
	}
	p := c.newProgress("stats", total)
	var (
		t                tally
		sizes            = newSizeCounts()
		age, idle        = newHistogram(), newHistogram()
		oldest, newest   *sessionRef
		users            = newTopUsers(topCapacity)
		withoutUser, all int64
	)
	now := time.Now()
	err = s.Scan(c.ctx, filestore.ScanOptions{ReadAll: true}, func(e *filestore.Entry) error {
		p.add(1)
		t.add(e)
		if e.Kind != filestore.KindLive {
			if e.Kind == filestore.KindExpired {
				all += e.Size
			}
			return nil
		}
		r := &e.Record
		sizes.add(e.Size)
		all += e.Size
		age.add(now.Sub(r.Created))
		idle.add(now.Sub(r.LastAccess))
		if oldest == nil || r.Created.Before(time.Time(oldest.Created)) {
			oldest = &sessionRef{e.ID, jsonTime(r.Created)}
		}
		if newest == nil || r.Created.After(time.Time(newest.Created)) {
			newest = &sessionRef{e.ID, jsonTime(r.Created)}
		}
		if u := userOf(r, c.opts.userKey); u.label != "" {
			users.add(u.label)
		} else {
			withoutUser++
		}
		return nil
	})
	p.finish()
	if err != nil {
		return err
	}

	var out statsJSON
	out.Counts = t
	out.Sizes.Total = all
	if sizes.n > 0 {
		out.Sizes.Mean = sizes.sum / sizes.n
	}
	out.Sizes.P50, out.Sizes.P90, out.Sizes.P99, out.Sizes.Max = sizes.percentile(0.5), sizes.percentile(0.9), sizes.percentile(0.99), sizes.max
	for i, b := range ageBuckets {
		out.Age = append(out.Age, bucketJSON{b.label, age[i]})
		out.Idle = append(out.Idle, bucketJSON{b.label, idle[i]})
	}
	out.Oldest, out.Newest = oldest, newest
	out.Users.WithoutUser = withoutUser
	out.Users.Approximate = users.evicted
	out.Users.Top = []userJSON{}
	for _, u := range users.top(statsTop) {
		out.Users.Top = append(out.Users.Top, userJSON{u.user, u.count, u.err})
	}
	if c.opts.json {
		return c.printJSON(out)
	}

	w := c.out
	fmt.Fprintln(w, "Files by state")
	if err := t.table(c, true); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nSession sizes (live): total %s on disk (live and expired), mean %d B, p50 %d B, p90 %d B, p99 %d B, max %d B\n",
		bytesText(all), out.Sizes.Mean, out.Sizes.P50, out.Sizes.P90, out.Sizes.P99, out.Sizes.Max)
	fmt.Fprintln(w, "\nAge of live sessions (since created)")
	drawHistogram(c, age)
	fmt.Fprintln(w, "\nIdle time of live sessions (since last seen)")
	drawHistogram(c, idle)
	if oldest != nil {
		fmt.Fprintf(w, "\nOldest live session %s, created %s (%s ago)\n", shortID(oldest.ID), timeText(time.Time(oldest.Created)), durText(now.Sub(time.Time(oldest.Created))))
		fmt.Fprintf(w, "Newest live session %s, created %s (%s ago)\n", shortID(newest.ID), timeText(time.Time(newest.Created)), durText(now.Sub(time.Time(newest.Created))))
	}
	if statsTop > 0 {
		fmt.Fprintf(w, "\nTop users by live sessions")
		if users.evicted {
			fmt.Fprintf(w, " (more than %d users: counts may be over by up to the ± shown)", topCapacity)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, u := range out.Users.Top {
			extra := ""
			if u.MaxError > 0 {
				extra = fmt.Sprintf("±%d", u.MaxError)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", u.Sessions, printable(u.User), extra)
		}
		if withoutUser > 0 {
			fmt.Fprintf(tw, "  %d\t(no %q value: not logged in)\t\n", withoutUser, c.opts.userKey)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// drawHistogram draws h as horizontal bars scaled to the largest bucket.
func drawHistogram(c *cli, h histogram) {
	const width = 40
	var top int64
	for _, n := range h {
		top = max(top, n)
	}
	for i, n := range h {
		bar := 0
		if top > 0 {
			bar = int((n*width + top - 1) / top)
		}
		fmt.Fprintf(c.out, "  %-7s %s %d\n", ageBuckets[i].label, strings.Repeat("█", bar)+strings.Repeat("·", width-bar), n)
	}
}

// bytesText formats a byte count for people.
func bytesText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
