package filestore_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// webapp is a real filesession.Manager over a store, served by a real HTTP
// server: the view of a client, for the tests that must say what a client
// sees (status, cookies) when the store fails or races.
type webapp struct {
	t   *testing.T
	m   *filesession.Manager
	srv *httptest.Server
}

// webSecret signs the test cookies; processes that share a directory in
// the cross-process tests share it too.
var webSecret = []byte("filestore tests: a secret of at least 32 bytes")

// newWebapp serves webMux through a Manager over st with clock now (nil:
// the real clock). configure may adjust the manager before it serves.
func newWebapp(t *testing.T, st filesession.Store, now func() time.Time, configure ...func(*filesession.Manager)) *webapp {
	t.Helper()
	m := newManager(t, st, now, configure...)
	a := &webapp{t: t, m: m}
	a.srv = httptest.NewServer(m.Handler(webMux(m)))
	t.Cleanup(a.srv.Close)
	return a
}

// newManager is the Manager of newWebapp.
func newManager(t *testing.T, st filesession.Store, now func() time.Time, configure ...func(*filesession.Manager)) *filesession.Manager {
	t.Helper()
	m, err := filesession.New(st, webSecret)
	if err != nil {
		t.Fatal(err)
	}
	if now != nil {
		m.Now = now
	}
	m.Logger = slog.New(slog.DiscardHandler)
	for _, f := range configure {
		f(m)
	}
	return m
}

// switchHandler serves through the handler stored last, so that tests that
// make many managers (the fault sweep: one per run) share one server.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// sharedServers are the servers of reusedWebapp, one per test.
var sharedServers sync.Map // *testing.T → *sharedServer

type sharedServer struct {
	sw  *switchHandler
	srv *httptest.Server
}

// reusedWebapp is newWebapp on a server that t's earlier calls made (the
// manager is new; the server and its connections are not).
func reusedWebapp(t *testing.T, st filesession.Store, now func() time.Time, configure ...func(*filesession.Manager)) *webapp {
	t.Helper()
	v, ok := sharedServers.Load(t)
	if !ok {
		ss := &sharedServer{sw: &switchHandler{}}
		ss.srv = httptest.NewServer(ss.sw)
		t.Cleanup(func() { ss.srv.Close(); sharedServers.Delete(t) })
		sharedServers.Store(t, ss)
		v = ss
	}
	ss := v.(*sharedServer)
	m := newManager(t, st, now, configure...)
	var h http.Handler = m.Handler(webMux(m))
	ss.sw.h.Store(&h)
	return &webapp{t: t, m: m, srv: ss.srv}
}

// webMux is the session API over HTTP:
//
//	POST /put?k=&v=   puts v (a string) under k
//	POST /incr?k=     filesession.Update of the counter k, answers the new value
//	POST /renew?k=&v= renews the session's ID (and puts, if k is given)
//	POST /destroy     destroys the session
//	GET  /show        answers the session's values as a JSON object
//	GET  /touch       changes nothing (the manager may touch)
//
// A failing Update is answered as the demo does, by the manager's ErrorFunc.
func webMux(m *filesession.Manager) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		if err := s.Put(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /incr", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		n, err := filesession.Update(r.Context(), s, r.FormValue("k"), func(n int, _ bool) (int, error) { return n + 1, nil })
		if err != nil {
			m.ErrorFunc(w, r, err)
			return
		}
		io.WriteString(w, strconv.Itoa(n))
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		s.Renew()
		if k := r.FormValue("k"); k != "" {
			if err := s.Put(k, r.FormValue("v")); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /destroy", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Destroy()
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		out := map[string]json.RawMessage{}
		for _, k := range s.Keys() {
			out[k] = s.Raw(k)
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /touch", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	return mux
}

// webResponse is what a client got.
type webResponse struct {
	code int
	body string
	hdr  http.Header
}

// cookie returns the session cookie the response set: its value, and
// whether there was a Set-Cookie for it at all (a cleared cookie has an
// empty value).
func (r webResponse) cookie() (string, bool) {
	for _, c := range (&http.Response{Header: r.hdr}).Cookies() {
		if c.Name == "session" {
			if c.MaxAge < 0 {
				return "", true
			}
			return c.Value, true
		}
	}
	return "", false
}

// do sends a request with the session cookie (if not empty).
func (a *webapp) do(method, path, cookie string) (webResponse, error) {
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		return webResponse{}, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		return webResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return webResponse{code: resp.StatusCode, body: string(b), hdr: resp.Header}, err
}

// must is do that fails the test on a transport error.
func (a *webapp) must(method, path, cookie string) webResponse {
	a.t.Helper()
	r, err := a.do(method, path, cookie)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// login creates a session holding a="old" and returns its cookie.
func (a *webapp) login() string {
	a.t.Helper()
	r := a.must("POST", "/put?k=a&v=old", "")
	c, ok := r.cookie()
	if r.code != http.StatusOK || !ok || c == "" {
		a.t.Fatalf("creating a session: %d %q, cookie %q", r.code, r.body, c)
	}
	return c
}

// show returns the values of the session cookie names, as the server sees
// them ("{}" for no session).
func (a *webapp) show(cookie string) string {
	a.t.Helper()
	r := a.must("GET", "/show", cookie)
	if r.code != http.StatusOK {
		a.t.Fatalf("GET /show: %d %q", r.code, r.body)
	}
	return strings.TrimSpace(r.body)
}

// errIs reports whether err matches any of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
