// Package filesession gives net/http applications durable sessions: a
// signed cookie names a session whose data lives server-side in a Store —
// by default plain JSON files on the server's own disk (package filestore),
// so logins and CSRF tokens survive restarts and deploys with nothing else
// to run. The same API runs on memory (memstore) or Redis (redisstore).
//
// Typical use:
//
//	store, err := filestore.Open(filestore.DefaultOptions()) // ./sessions
//	if err != nil { ... }
//	defer store.Close()
//	sessions, err := filesession.New(store, secret) // secret: ≥ 32 random bytes
//	if err != nil { ... }
//	mux := http.NewServeMux()
//	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
//		s := filesession.FromContext(r.Context())
//		s.Renew() // new ID on login: a pre-login cookie is dead
//		s.Put("user", User{ID: "123", Email: "user@example.com"})
//		http.Redirect(w, r, "/", http.StatusSeeOther)
//	})
//	http.ListenAndServe(addr, sessions.Handler(csrf.Protect(mux)))
//
// Sessions are lazy: a request that stores nothing gets no cookie and
// creates no file. A request that changes nothing writes no data; it at
// most touches the session (refreshes its idle expiry) once per
// TouchInterval. A request that changes keys sends only those keys to the
// store, which applies them to the latest stored version under a lock, so
// concurrent requests of one session do not lose each other's changes; for
// read-modify-write of one key use Update.
//
// Status policy: a missing, forged, garbled, expired or unknown cookie is
// "no session", never an error, and creates nothing for the presented ID; a
// store failure is answered 503 with Retry-After and changes nothing; a
// request whose session was ended by another request meanwhile gets 409 and
// its changes are dropped, never resurrecting the session; a session that
// would exceed Manager.MaxSize is an ErrTooLarge from Put or Update, with
// nothing written. The csrf package answers 403. the README's Security section has the
// threat model and the whole policy.
//
// Cookies: HttpOnly, SameSite=Lax, Secure per CookieOptions.Secure, and
// named "__Host-session" when Secure is SecureAlways (see
// CookieOptions.Name). Manager.Validate, which Handler calls, refuses cookie
// settings browsers would reject.
package filesession
