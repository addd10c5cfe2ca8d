package main

import (
	"encoding/json"
	"time"

	"github.com/filesession/filesession/filestore"
)

// showJSON is what show prints.
type showJSON struct {
	ID          string                     `json:"id"`
	File        string                     `json:"file"`
	State       string                     `json:"state"`
	Error       string                     `json:"error,omitempty"`
	Created     *jsonTime                  `json:"created,omitempty"`
	LastSeen    *jsonTime                  `json:"lastSeen,omitempty"`
	IdleTimeout string                     `json:"idleTimeout,omitempty"`
	Deadline    *jsonTime                  `json:"deadline,omitempty"`
	Expires     *jsonTime                  `json:"expires,omitempty"`
	ExpiresIn   string                     `json:"expiresIn,omitempty"`
	Size        int64                      `json:"size"`
	Mode        string                     `json:"mode"`
	Owner       string                     `json:"owner,omitempty"`
	Cookie      *cookieJSON                `json:"cookie,omitempty"`
	Values      map[string]json.RawMessage `json:"values,omitempty"`
}

// cookieJSON is the cookie attributes a session records, in
// express-session's names.
type cookieJSON struct {
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	SameSite string `json:"sameSite,omitempty"`
}

var showCmd = &command{
	name:    "show",
	args:    "ID",
	summary: "Print one session as JSON, with its computed expiry (an ID, a unique prefix, or a file name)",
	run:     runShow,
}

func runShow(c *cli, args []string) error {
	if len(args) != 1 {
		return usagef("show takes one session ID")
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	ids, err := c.resolveIDs(s, args)
	if err != nil {
		return err
	}
	e, err := s.Inspect(c.ctx, ids[0])
	if err != nil {
		return err
	}
	v := showJSON{ID: e.ID, File: e.Name, State: e.Kind.String(), Size: e.Size, Mode: (e.Type | e.Perm).String()}
	if e.Err != nil {
		v.Error = e.Err.Error()
	}
	if e.Read {
		r := &e.Record
		ct, lt, xt := jsonTime(r.Created), jsonTime(r.LastAccess), jsonTime(e.ExpiresAt)
		v.Created, v.LastSeen, v.Expires = &ct, &lt, &xt
		v.IdleTimeout = r.IdleTimeout.String()
		if !r.Deadline.IsZero() {
			dt := jsonTime(r.Deadline)
			v.Deadline = &dt
		}
		v.ExpiresIn = time.Until(e.ExpiresAt).Round(time.Second).String()
		v.Cookie = &cookieJSON{r.Cookie.Secure, r.Cookie.HTTPOnly, r.Cookie.Path, r.Cookie.Domain, r.Cookie.SameSite}
		v.Values = r.Values
		v.Owner = r.User
	}
	if c.opts.json {
		err = c.printJSON(v)
	} else {
		err = c.printPrettyJSON(v)
	}
	if err != nil {
		return err
	}
	if e.Kind != filestore.KindLive && e.Kind != filestore.KindExpired {
		return errProblems // what is there is not a usable session
	}
	return nil
}
