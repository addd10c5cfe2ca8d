'use strict';
// server.js is the Express half of the interop tests: an app on
// express-session 1.19.0 + session-file-store 1.5.0 with the routes of the Go
// demo (cmd/demo), the same session keys ("user" = {userId, email}, "count" a
// number, "csrfToken" the CSRF secret) and the same CSRF token scheme, so a
// browser (or a test's one cookie jar) can be served by either stack.
//
//   PORT=3000 SESSIONS_DIR=./sessions SECRET=... node server.js
//
// Environment (all optional except SECRET):
//   PORT          listen port on 127.0.0.1 (default 3000; 0 picks a free one).
//                 The first line on stdout is {"event":"listening","port":N}.
//   SESSIONS_DIR  session-file-store's path (default ./sessions).
//   SECRET        express-session's secret. A JSON array ('["new","old"]')
//                 gives a list: the first signs, all verify.
//   TTL           session-file-store's ttl in seconds (default 3600): the
//                 lifetime of sessions whose cookie.originalMaxAge is null.
//   MAX_AGE       cookie.maxAge in milliseconds (default 86400000, 24h).
//   REAP_INTERVAL session-file-store's reapInterval in seconds (default 3600;
//                 -1 disables the reaper).
//   RETRIES       session-file-store's retries (default 5, its own default).
//                 Tests use 0: every missing file is otherwise retried 5
//                 times, 50 ms apart.
//   TEST_HOOKS    "1" enables the /__test routes below and a clock the tests
//                 can move (never in production).
//
// Routes (as the Go demo's; every POST needs the CSRF token in the
// X-CSRF-Token header or the _csrf form field):
//   GET  /           a one-line text page naming the user
//   GET  /api/csrf   {"token": "..."}; creates the session's CSRF secret
//   POST /login      email + password (any) -> regenerate, user set, 303 /
//   POST /logout     destroy the session, 303 /
//   GET  /api/me     the user, or 401 {"error":"not logged in"}
//   POST /api/count  count + 1 -> {"count": N}
//   GET  /api/data   {"data": <the session's "data" value>} (tests)
//   POST /api/data   JSON body stored as the session's "data" value (tests)
//
// CSRF: the same synchronizer token as Go's csrf package. The session holds
// csrfToken, 32 random bytes in hex; clients get base64url(pad || pad XOR
// secret) with a fresh 32-byte pad, and a request is accepted if its token
// unmasks to the secret (compared in constant time). So a token either stack
// handed out is accepted by the other. Unlike the Go package this server does
// not also check Origin/Sec-Fetch-Site.

const crypto = require('crypto');
const express = require('express');
const session = require('express-session');
const FileStore = require('session-file-store')(session);
const helpers = require('session-file-store/lib/session-file-helpers');

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));

if (!env.SECRET) {
  console.error('server.js: SECRET is required');
  process.exit(2);
}
const secret = env.SECRET.startsWith('[') ? JSON.parse(env.SECRET) : env.SECRET;
const testHooks = env.TEST_HOOKS === '1';

// --- test clock -------------------------------------------------------------
// Tests move Node's clock together with the Go server's injected clock, so
// that expiry is tested without sleeping. Both express-session
// (Date.now()) and session-file-store (new Date().getTime()) read the global
// Date at call time, so replacing it moves them both.
let clockOffset = 0;
if (testHooks) {
  const RealDate = Date;
  class TestDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + clockOffset);
      else super(...args);
    }
    static now() {
      return RealDate.now() + clockOffset;
    }
  }
  global.Date = TestDate;
}

// --- reaper observation -------------------------------------------------------
// session-file-store logs one line when each reap pass starts; counting them
// lets a test wait for passes of the real, interval-driven reaper.
let reapPasses = 0;
const reapWaiters = [];
function logFn(msg) {
  if (String(msg).includes('Deleting expired sessions')) {
    reapPasses++;
    for (const w of reapWaiters.splice(0)) w();
  }
  if (!String(msg).includes('will retry')) console.error(msg);
}

const store = new FileStore({
  path: env.SESSIONS_DIR || './sessions',
  ttl: num('TTL', 3600),
  reapInterval: num('REAP_INTERVAL', 3600),
  retries: num('RETRIES', 5),
  logFn,
});

const app = express();
app.disable('x-powered-by');

if (testHooks) {
  const hooks = express.Router();
  hooks.use(express.json());
  // POST /__test/clock {"offsetMs": N}: Node's clock is real time + N ms.
  hooks.post('/clock', (req, res) => {
    clockOffset = Number(req.body.offsetMs) || 0;
    res.json({ now: Date.now() });
  });
  // GET /__test/reaps?after=N: answers once more than N reap passes of the
  // interval reaper have started.
  hooks.get('/reaps', (req, res) => {
    const after = Number(req.query.after) || 0;
    const answer = () => res.json({ passes: reapPasses });
    if (reapPasses > after) return answer();
    reapWaiters.push(answer);
  });
  // POST /__test/reap: one full pass of session-file-store's own reap logic
  // (list, then destroyIfExpired for each file), answered when every file
  // has been dealt with. helpers.reap's own callback fires when the file
  // with the last index is done, not when all are (a known bug), so the
  // pass is driven here with the same two helpers and counted properly.
  hooks.post('/reap', (req, res) => {
    helpers.list(store.options, (err, files) => {
      if (err) return res.status(500).json({ error: String(err) });
      let left = files.length;
      const errors = [];
      if (left === 0) return res.json({ files: 0, errors });
      for (const file of files) {
        helpers.destroyIfExpired(helpers.sessionId(store.options, file), store.options, (e) => {
          if (e) errors.push(String(e));
          if (--left === 0) res.json({ files: files.length, errors });
        });
      }
    });
  });
  // GET /__test/expired?sid=S: session-file-store's own verdict on S
  // (store.expired, i.e. its isExpired rule). A missing file is
  // {"missing":true}.
  hooks.get('/expired', (req, res) => {
    store.expired(String(req.query.sid), (err, expired) => {
      if (err && err.code === 'ENOENT') return res.json({ missing: true });
      if (err) return res.status(500).json({ error: String(err) });
      res.json({ expired });
    });
  });
  app.use('/__test', hooks);
}

app.use(
  session({
    name: 'connect.sid',
    secret,
    store,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: num('MAX_AGE', 86400000), httpOnly: true, secure: false, sameSite: 'lax', path: '/' },
  }),
);
app.use(express.urlencoded({ extended: false, limit: '64kb' }));
app.use(express.json({ limit: '64kb' }));

// --- CSRF, the scheme of Go's csrf package -----------------------------------
const TOKEN_BYTES = 32;

function csrfSecret(sess) {
  const h = sess.csrfToken;
  if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) return null;
  return Buffer.from(h, 'hex');
}

function maskToken(secretBytes) {
  const pad = crypto.randomBytes(TOKEN_BYTES);
  const out = Buffer.alloc(2 * TOKEN_BYTES);
  pad.copy(out, 0);
  for (let i = 0; i < TOKEN_BYTES; i++) out[TOKEN_BYTES + i] = pad[i] ^ secretBytes[i];
  return out.toString('base64url');
}

function validToken(sess, tok) {
  const s = csrfSecret(sess);
  if (!s || typeof tok !== 'string' || tok.length !== 86 || !/^[A-Za-z0-9_-]+$/.test(tok)) return false;
  const buf = Buffer.from(tok, 'base64url');
  if (buf.length !== 2 * TOKEN_BYTES) return false;
  const got = Buffer.alloc(TOKEN_BYTES);
  for (let i = 0; i < TOKEN_BYTES; i++) got[i] = buf[i] ^ buf[TOKEN_BYTES + i];
  return crypto.timingSafeEqual(got, s);
}

app.use((req, res, next) => {
  if (['GET', 'HEAD', 'OPTIONS', 'TRACE'].includes(req.method)) return next();
  const tok = req.get('X-CSRF-Token') || (req.body && req.body._csrf);
  if (!validToken(req.session, tok)) {
    res.status(403).type('text/plain').send('Forbidden: invalid or missing CSRF token.\n');
    return;
  }
  next();
});

// --- routes ------------------------------------------------------------------
const noStore = (res) => res.set('Cache-Control', 'no-store');

// userID is the Go demo's: the first 8 bytes of sha256(lower-cased email), hex.
const userID = (email) => crypto.createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 16);

app.get('/', (req, res) => {
  noStore(res);
  const u = req.session.user;
  res.type('text/plain').send(u ? `Served by Express. Logged in as ${u.email}, count ${req.session.count || 0}.\n` : 'Served by Express. Not logged in.\n');
});

app.get('/api/csrf', (req, res) => {
  let s = csrfSecret(req.session);
  if (!s) {
    s = crypto.randomBytes(TOKEN_BYTES);
    req.session.csrfToken = s.toString('hex');
  }
  noStore(res).json({ token: maskToken(s) });
});

app.post('/login', (req, res, next) => {
  const email = String(req.body.email || '').trim().toLowerCase();
  const password = String(req.body.password || '');
  if (!email || !password || email.length > 254) {
    noStore(res).status(400).type('text/plain').send('Enter an email address and a password.\n');
    return;
  }
  // Like the Go demo's Session.Renew: a new ID (against session fixation),
  // the values kept, the CSRF secret dropped.
  const keep = {};
  for (const k of Object.keys(req.session)) {
    if (k !== 'cookie' && k !== 'csrfToken' && !k.startsWith('__')) keep[k] = req.session[k];
  }
  req.session.regenerate((err) => {
    if (err) return next(err);
    Object.assign(req.session, keep);
    req.session.user = { userId: userID(email), email };
    noStore(res).redirect(303, '/');
  });
});

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => {
    if (err) return next(err);
    res.clearCookie('connect.sid', { path: '/' });
    noStore(res).redirect(303, '/');
  });
});

app.get('/api/me', (req, res) => {
  noStore(res);
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  res.json(req.session.user);
});

app.post('/api/count', (req, res) => {
  const n = req.session.count;
  if (n !== undefined && typeof n !== 'number') {
    return noStore(res).status(500).json({ error: 'the counter in this session is not a number' });
  }
  req.session.count = (n || 0) + 1;
  noStore(res).json({ count: req.session.count });
});

app.get('/api/data', (req, res) => {
  noStore(res).json({ data: req.session.data === undefined ? null : req.session.data });
});

app.post('/api/data', (req, res) => {
  req.session.data = req.body.data;
  noStore(res).json({ ok: true });
});

app.use((err, req, res, next) => {
  console.error('server.js:', err);
  if (res.headersSent) return next(err);
  const status = err.status >= 400 && err.status < 500 ? err.status : 500;
  res.status(status).type('text/plain').send(status === 500 ? 'Internal Server Error\n' : 'Bad Request\n');
});

const server = app.listen(num('PORT', 3000), '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'listening', port: server.address().port }));
});

function shutdown() {
  clearInterval(store.options.reapIntervalObject);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
