// Command mkbench fills a directory with session files for the
// filesession benchmarks (cmd/filesession/bench.sh), fast: it writes the
// files directly, in the file store's exact format and with its file
// times (modification time = last access, access time = expiry hint), from
// several goroutines and without fsync, instead of going through the store
// (whose two fsyncs per write would make a million files take hours).
// Before writing, it checks its output byte for byte against what the real
// store writes for the same session, so the benchmark directory is what a
// running application would leave.
//
//	mkbench -dir DIR -n 1000000 -expired 0.1 [-only-expired]
//
// Session i has a fixed ID (from i), a user among -users, a 24h idle
// timeout, and is either live (last seen within the last 12 hours) or
// expired (last seen 25 to 48 hours ago), -expired of them. So
// `find DIR -name 'sess_*.json' -mmin +1440` matches exactly the expired
// ones, which is what `filesession reap` removes. -only-expired writes only
// the expired ones that are missing, to restore the directory after a
// reap.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", "", "directory to fill (created 0700)")
	n := flag.Int("n", 100000, "number of session files")
	expired := flag.Float64("expired", 0.1, "fraction of expired sessions")
	users := flag.Int("users", 5000, "number of distinct users")
	onlyExpired := flag.Bool("only-expired", false, "write only the expired sessions that are missing")
	workers := flag.Int("workers", 8, "goroutines writing files")
	flag.Parse()
	if *dir == "" {
		log.Fatal("mkbench: -dir is required")
	}
	if err := checkFormat(); err != nil {
		log.Fatalf("mkbench: %v", err)
	}
	start := time.Now()
	written, err := generate(*dir, *n, *expired, *users, *onlyExpired, *workers, start)
	if err != nil {
		log.Fatalf("mkbench: %v", err)
	}
	fmt.Printf("mkbench: wrote %d session files in %s (%s)\n", written, *dir, time.Since(start).Round(time.Millisecond))
}

// generate writes the n sessions (or, with onlyExpired, the expired ones
// that are missing) to dir, as of now, and returns how many it wrote.
func generate(dir string, n int, expired float64, users int, onlyExpired bool, workers int, now time.Time) (int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	expiredEvery := 0
	if expired > 0 {
		expiredEvery = int(1/expired + 0.5)
	}
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for i := w; i < n; i += workers {
				isExpired := expiredEvery > 0 && i%expiredEvery == 0
				if onlyExpired && !isExpired {
					continue
				}
				s := session(i, isExpired, users, now)
				buf = s.appendFile(buf[:0])
				err := writeFile(filepath.Join(dir, "sess_"+s.id+".json"), buf, s.expires(), s.lastAccess)
				if errors.Is(err, unix.EEXIST) && onlyExpired {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return written.Load(), <-errs
}

// benchSession is one generated session.
type benchSession struct {
	id                  string
	created, lastAccess time.Time
	idle                time.Duration
	user                int
	csrf                string
}

// session returns session i, made from i alone (and now), so that every
// run of mkbench makes the same IDs.
func session(i int, expired bool, users int, now time.Time) benchSession {
	sum := sha256.Sum256([]byte("mkbench " + strconv.Itoa(i)))
	id := base64.RawURLEncoding.EncodeToString(sum[:])[:filesession.IDLength]
	word := func(i int) uint64 {
		return uint64(sum[i]) | uint64(sum[i+1])<<8 | uint64(sum[i+2])<<16 | uint64(sum[i+3])<<24
	}
	r, rc, ru := word(0), word(4), word(8)
	var last time.Time
	if expired {
		last = now.Add(-25*time.Hour - time.Duration(r%uint64(23*time.Hour/time.Second))*time.Second)
	} else {
		last = now.Add(-time.Duration(r%uint64(12*time.Hour/time.Second)) * time.Second)
	}
	last = last.Truncate(time.Millisecond)
	return benchSession{
		id: id, lastAccess: last, created: last.Add(-time.Duration(rc%7200) * time.Second),
		idle: 24 * time.Hour, user: int(ru % uint64(users)),
		csrf: base64.RawURLEncoding.EncodeToString(sum[12:30]),
	}
}

func (s benchSession) expires() time.Time { return s.lastAccess.Add(s.idle) }

func (s benchSession) email() string { return "user" + strconv.Itoa(s.user) + "@example.com" }

// appendFile appends the session's file as the file store writes it.
func (s benchSession) appendFile(b []byte) []byte {
	b = append(b, `{"cookie":{"originalMaxAge":`...)
	b = strconv.AppendInt(b, s.idle.Milliseconds(), 10)
	b = append(b, `,"expires":"`...)
	b = s.expires().UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"csrfToken":"`...)
	b = append(b, s.csrf...)
	b = append(b, `","user":{"userId":"u`...)
	b = strconv.AppendInt(b, int64(s.user), 10)
	b = append(b, `","email":"`...)
	b = append(b, s.email()...)
	b = append(b, `"},"__created":`...)
	b = strconv.AppendInt(b, s.created.UnixMilli(), 10)
	b = append(b, `,"__lastAccess":`...)
	b = strconv.AppendInt(b, s.lastAccess.UnixMilli(), 10)
	return append(b, '}')
}

// record is the session as the store's API sees it.
func (s benchSession) record() filesession.Record {
	u, _ := json.Marshal(map[string]string{"userId": "u" + strconv.Itoa(s.user), "email": s.email()})
	return filesession.Record{
		Values: map[string]json.RawMessage{
			"csrfToken": json.RawMessage(strconv.Quote(s.csrf)),
			"user":      u,
		},
		Created: s.created, LastAccess: s.lastAccess, IdleTimeout: s.idle,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// checkFormat writes one session through the real store and compares the
// file and its times with what mkbench writes for it.
func checkFormat() error {
	dir, err := os.MkdirTemp("", "mkbench-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := filestore.Open(filestore.Options{Path: filepath.Join(dir, "s"), Sync: filestore.SyncNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer st.Close()
	s := session(7, false, 100, time.Now())
	r := s.record()
	// The user object's keys in the order the demo writes them.
	r.Values["user"] = json.RawMessage(`{"userId":"u` + strconv.Itoa(s.user) + `","email":"` + s.email() + `"}`)
	if err := st.Create(context.Background(), s.id, r); err != nil {
		return err
	}
	path := filepath.Join(dir, "s", "sess_"+s.id+".json")
	want, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if got := s.appendFile(nil); string(got) != string(want) {
		return fmt.Errorf("generated file differs from the store's:\n got %s\nwant %s", got, want)
	}
	var stt unix.Stat_t
	if err := unix.Stat(path, &stt); err != nil {
		return err
	}
	if time.Unix(stt.Mtim.Unix()).UnixMilli() != s.lastAccess.UnixMilli() || time.Unix(stt.Atim.Unix()).UnixMilli() != s.expires().UnixMilli() {
		return fmt.Errorf("the store's file times differ: mtime %v atime %v, want %v and %v", time.Unix(stt.Mtim.Unix()), time.Unix(stt.Atim.Unix()), s.lastAccess, s.expires())
	}
	return nil
}

// writeFile creates name (which must not exist) with data and the given
// access and modification times.
func writeFile(name string, data []byte, atime, mtime time.Time) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, data)
	if err == nil {
		ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, name, ts, 0)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
