'use strict';
// bench.js measures session-file-store 1.5.0's store operations, the
// workloads the Go benchmark (express/bench_test.go, BenchmarkStore) runs
// against filestore.ExpressOptions, so the two can be compared side by side:
//
//   node bench.js --dir /tmp/s --op get --conc 64 --n 20000
//
// --op      create (store.set of a new session), get (store.get of an
//           existing one), touch (store.touch: express-session's call for an
//           unmodified request, which re-reads and rewrites the file),
//           destroy (store.destroy of an existing one).
// --conc    operations kept in flight at once (default 1).
// --n       operations to time (default 10000).
// --dir     the sessions directory; it should be empty or absent.
//
// The store runs with its defaults except retries 0 and no reaper (neither
// is part of the workloads). Sessions are the reference session: a cookie
// with maxAge 24h, a 64-character csrfToken and a user object. Setup
// (creating the sessions that get, touch and destroy need) is not timed. It
// prints one JSON line: {"op","conc","n","ns_per_op","ops_per_sec"}.

const crypto = require('crypto');
const session = require('express-session');
const FileStore = require('session-file-store')(session);

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const dir = arg('dir');
const op = arg('op', 'get');
const conc = Number(arg('conc', 1));
const n = Number(arg('n', 10000));
if (!dir || !['create', 'get', 'touch', 'destroy'].includes(op) || !(conc >= 1) || !(n >= 1)) {
  console.error('usage: node bench.js --dir DIR --op create|get|touch|destroy [--conc C] [--n N]');
  process.exit(2);
}

const store = new FileStore({ path: dir, reapInterval: -1, retries: 0, logFn: () => {} });
const newID = () => crypto.randomBytes(24).toString('base64url'); // uid-safe's IDs

function newSession() {
  return {
    cookie: new session.Cookie({ maxAge: 86400000, httpOnly: true, secure: false, sameSite: 'lax', path: '/' }),
    csrfToken: crypto.randomBytes(32).toString('hex'),
    user: { userId: '478abec743056916', email: 'ada@example.com' },
  };
}

// run calls fn(i) for i in [0, count) with conc calls in flight.
function run(count, fn) {
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    if (count === 0) return resolve();
    const start = () => {
      const i = next++;
      fn(i, (err) => {
        if (err) return reject(err);
        if (++done === count) return resolve();
        if (next < count) start();
      });
    };
    for (let k = 0; k < Math.min(conc, count); k++) start();
  });
}

async function main() {
  // get and touch cycle over a pool; destroy needs one session per call.
  const poolSize = op === 'destroy' ? n : op === 'create' ? 0 : Math.min(n, 1000);
  const ids = Array.from({ length: Math.max(n, poolSize) }, newID);
  const sessions = new Map();
  await run(poolSize, (i, cb) => {
    const s = newSession();
    sessions.set(ids[i], s);
    store.set(ids[i], s, cb);
  });
  const pool = ids.slice(0, poolSize);

  let body;
  switch (op) {
    case 'create':
      body = (i, cb) => store.set(ids[i], newSession(), cb);
      break;
    case 'get':
      body = (i, cb) =>
        store.get(pool[i % pool.length], (err, s) => cb(err || (s ? null : new Error('session missing'))));
      break;
    case 'touch':
      body = (i, cb) => {
        const id = pool[i % pool.length];
        store.touch(id, sessions.get(id), cb);
      };
      break;
    case 'destroy':
      body = (i, cb) => store.destroy(pool[i], cb);
      break;
  }
  const t0 = process.hrtime.bigint();
  await run(n, body);
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(JSON.stringify({ op, conc, n, ns_per_op: ns / n, ops_per_sec: (n * 1e9) / ns }));
}

main().catch((err) => {
  console.error('bench.js:', err);
  process.exit(1);
});
