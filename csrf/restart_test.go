package csrf_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/filestore"
)

// TestTokenSurvivesStoreRestart is the seed's promise: a CSRF token handed
// out before the server restarted is still valid after it, because it lives
// in the session file, not in memory.
func TestTokenSurvivesStoreRestart(t *testing.T) {
	dir := t.TempDir()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	var srv *httptest.Server
	start := func() *filestore.Store {
		opts := filestore.DefaultOptions()
		opts.Path = dir
		opts.Logger = slog.New(slog.DiscardHandler)
		store, err := filestore.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		m, err := filesession.New(store, secret)
		if err != nil {
			t.Fatal(err)
		}
		m.Logger = opts.Logger
		mux := http.NewServeMux()
		mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
			tok, _ := csrf.Token(r)
			json.NewEncoder(w).Encode(map[string]string{"token": tok})
		})
		mux.HandleFunc("POST /do", func(w http.ResponseWriter, r *http.Request) {})
		h := m.Handler(csrf.Protect(mux))
		if srv == nil {
			srv = httptest.NewServer(h)
		} else {
			srv.Config.Handler = h
		}
		return store
	}
	store := start()
	defer func() { srv.Close() }()
	resp, err := client.Get(srv.URL + "/token")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()

	// Restart: close the store and open a new one (and a new manager) on the
	// same directory.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store = start()
	defer store.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/do", nil)
	req.Header.Set(csrf.HeaderName, v.Token)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token from before the restart: %d, want 200", resp.StatusCode)
	}
}
