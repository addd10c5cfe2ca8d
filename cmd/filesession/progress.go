package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// progress draws a progress bar on stderr for a long operation, when stderr
// is a terminal and --quiet is not given; otherwise every method does
// nothing, so commands call it unconditionally. It redraws from a ticker,
// not on every item, so counting costs one atomic add.
type progress struct {
	w     io.Writer
	label string
	total atomic.Int64 // 0: unknown, draw a counter instead of a bar
	done  atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// progressInterval is how often the bar is redrawn.
const progressInterval = 150 * time.Millisecond

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressOn reports whether commands should show progress.
func (c *cli) progressOn() bool { return !c.opts.quiet && isTerminal(c.stderrFile) }

// newProgress starts a progress display, or returns nil (a no-op) when
// progress is off. total may be 0 for unknown.
func (c *cli) newProgress(label string, total int64) *progress {
	if !c.progressOn() {
		return nil
	}
	p := &progress{w: c.stderr, label: label, start: time.Now(), stop: make(chan struct{})}
	p.total.Store(total)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fmt.Fprint(p.w, "\r\x1b[K"+p.line(time.Now()))
			}
		}
	}()
	return p
}

// add counts n more items done.
func (p *progress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// setTotal sets the number of items, once known.
func (p *progress) setTotal(n int64) {
	if p != nil {
		p.total.Store(n)
	}
}

// finish stops the display and clears its line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}

// line renders the display at now: a bar when the total is known, a count
// otherwise.
func (p *progress) line(now time.Time) string {
	done, total := p.done.Load(), p.total.Load()
	elapsed := now.Sub(p.start).Round(time.Second)
	if total <= 0 {
		return fmt.Sprintf("%s %d %s", p.label, done, elapsed)
	}
	done = min(done, total)
	const width = 30
	filled := int(done * width / total)
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d %s", p.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done*100/total, done, total, elapsed)
}

// countNames counts the entries of dir by reading its names only, a few
// hundred at a time: the total for a progress bar, at the cost of one
// getdents pass. Errors give 0 (unknown).
func countNames(dir string) int64 {
	f, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	for {
		names, err := f.Readdirnames(1024)
		n += int64(len(names))
		if err != nil {
			return n
		}
	}
}
