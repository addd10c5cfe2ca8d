package express_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/express"
	"github.com/filesession/filesession/filestore"
)

// A Go service that shares ./sessions and the connect.sid cookie with an
// Express app configured as
//
//	session({secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false,
//	         store: new FileStore({path: './sessions'}), cookie: {maxAge: 86400000}})
func Example() {
	store, err := filestore.Open(filestore.ExpressOptions("./sessions"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m, err := express.New(store, os.Getenv("SESSION_SECRET"))
	if err != nil {
		log.Fatal(err) // ErrSecret: the signing secret must have 32 bytes or more
	}
	m.IdleTimeout = 24 * time.Hour // cookie.maxAge

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		// req.session.user on the Node side.
		var u struct {
			UserID string `json:"userId"`
			Email  string `json:"email"`
		}
		if err := filesession.FromContext(r.Context()).Decode("user", &u); err != nil {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(u.Email))
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", m.Handler(csrf.Protect(mux))))
}
