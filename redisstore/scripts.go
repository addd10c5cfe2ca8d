package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the store's atomic operations. Redis runs a
// script to completion before it serves any other command, so each one is a
// single indivisible step: that is what makes Save a merge on the latest
// record (not on the copy a request loaded), keeps Touch from resurrecting a
// deleted session, and lets Renew move a session without a moment where
// neither ID exists. go-redis's Script.Run sends EVALSHA and falls back to
// EVAL when the server does not have the script cached (after a restart or
// SCRIPT FLUSH), so a restarted server is handled without special code.
//
// Every script takes the store's clock as ARGV[1] (Unix milliseconds) and
// the store's default idle timeout as ARGV[2], and decides expiry from the
// record's own fields with that clock, never from Redis's TTL: the TTL set
// with PEXPIRE is derived from the same fields (expiry minus now, a relative
// duration) and only lets Redis drop dead records on its own. Computing it
// relative to the store's clock keeps real TTLs sane when the store runs on
// a fake clock (the conformance suite's) or a clock that disagrees with the
// server's.
//
// Numbers are Lua doubles, exact for integers up to 2^53; Unix milliseconds
// stay far below that. Timestamps that are written back are passed through
// as the decimal strings Go produced, never re-formatted by Lua.

// prelude holds the functions every script shares.
const prelude = `
local function expiry(la, idle, dl)
  local e = la + idle
  if dl > 0 and dl < e then e = dl end
  return e
end

-- state reads a session's metadata. st is 'missing', 'corrupt', 'expired'
-- or 'live'; frozen is 'no', 'active' (a cluster-mode Renew is moving the
-- session) or 'stale' (a Renew that died left its marker behind).
local function state(key, now, defidle)
  local m = redis.call('HMGET', key, '__lastAccess', '__idle', '__deadline', '__v', '__renewTo', '__renewUntil', '__w')
  local s = {}
  if not m[1] then
    if redis.call('EXISTS', key) == 0 then s.st = 'missing' else s.st = 'corrupt' end
    return s
  end
  local la, idle, dl = tonumber(m[1]), defidle, 0
  if m[2] then idle = tonumber(m[2]) end
  if m[3] then dl = tonumber(m[3]) end
  if la == nil or idle == nil or dl == nil then s.st = 'corrupt' return s end
  if idle <= 0 then idle = defidle end
  if now >= expiry(la, idle, dl) then s.st = 'expired' return s end
  s.st, s.la, s.laRaw, s.idle, s.dl = 'live', la, m[1], idle, dl
  s.v = tonumber(m[4]) or 0
  s.renewTo, s.w = m[5], m[7]
  s.frozen = 'no'
  if m[6] then
    if (tonumber(m[6]) or 0) > now then s.frozen = 'active' else s.frozen = 'stale' end
  end
  return s
end

-- hsetRange and hdelRange send t[i..j] to HSET or HDEL in chunks, because
-- Lua's unpack can spread only a few thousand values onto the stack at once
-- and a session may have more keys than that. (Chunks are invisible to
-- others: the script as a whole is still one step.)
local function hsetRange(key, t, i, j)
  while i <= j do
    local k = math.min(i + 1999, j)
    redis.call('HSET', key, unpack(t, i, k))
    i = k + 1
  end
end
local function hdelRange(key, t, i, j)
  while i <= j do
    local k = math.min(i + 1999, j)
    redis.call('HDEL', key, unpack(t, i, k))
    i = k + 1
  end
end

-- settle sets the key's TTL from the record's expiry, or deletes a record
-- that the write left expired (a shortened idle timeout or an earlier
-- deadline), so that nothing dead lingers with a fresh TTL.
local function settle(key, now, la, idle, dl)
  local ttl = expiry(la, idle, dl) - now
  if ttl <= 0 then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, ttl)
  end
end

-- apply merges a Change into the live record at key. Its arguments start at
-- ARGV[i]: at, idle (0 keeps), deadline (0 keeps), cookie ('' keeps), the
-- number of deleted keys, those keys, then field/value pairs to set.
-- Deletions come before sets, as in Change.Apply.
local function apply(key, now, s, i)
  local at, nidle, ndl, cookie, ndel = tonumber(ARGV[i]), tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), ARGV[i+3], tonumber(ARGV[i+4])
  local la, idle, dl = s.la, s.idle, s.dl
  local j = i + 5
  if s.frozen == 'stale' then redis.call('HDEL', key, '__renewTo', '__renewUntil') end
  hdelRange(key, ARGV, j, j + ndel - 1)
  j = j + ndel
  local set = {}
  for k = j, #ARGV do set[#set + 1] = ARGV[k] end
  if at > la then la = at; set[#set + 1] = '__lastAccess'; set[#set + 1] = ARGV[i] end
  if nidle > 0 then idle = nidle; set[#set + 1] = '__idle'; set[#set + 1] = ARGV[i+1] end
  if ndl > 0 then dl = ndl; set[#set + 1] = '__deadline'; set[#set + 1] = ARGV[i+2] end
  if cookie ~= '' then set[#set + 1] = 'cookie'; set[#set + 1] = cookie end
  set[#set + 1] = '__v'
  set[#set + 1] = tostring(s.v + 1)
  hsetRange(key, set, 1, #set)
  settle(key, now, la, idle, dl)
end
`

// Script results. A script answers one of these status strings (the freeze
// script answers a status followed by the record's fields).
const (
	resOK       = "ok"
	resMissing  = "missing"
	resExpired  = "expired"
	resCorrupt  = "corrupt"
	resExists   = "exists"
	resFrozen   = "frozen"
	resConflict = "conflict"
	resGone     = "gone"
	resLapsed   = "lapsed"
)

// createScript stores a new record unless a live one has the ID.
// KEYS[1] = key; ARGV = now, defidle, token, lastAccess, idle, deadline, then
// field/value pairs (all of the record, metadata included). The token makes
// a Create that go-redis retried after a lost reply succeed instead of
// reporting its own record as a collision.
var createScript = redis.NewScript(prelude + `
local now, defidle = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = state(KEYS[1], now, defidle)
if s.st == 'live' then
  if s.w == ARGV[3] then return 'ok' end
  return 'exists'
end
if s.st == 'corrupt' then return 'corrupt' end
if s.st == 'expired' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], '__v', 1, '__w', ARGV[3])
hsetRange(KEYS[1], ARGV, 7, #ARGV)
settle(KEYS[1], now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return 'ok'
`)

// saveScript merges a Change into the live record.
// KEYS[1] = key; ARGV = now, defidle, then the Change as apply reads it.
var saveScript = redis.NewScript(prelude + `
local now, defidle = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = state(KEYS[1], now, defidle)
if s.st ~= 'live' then return s.st end
if s.frozen == 'active' then return 'frozen' end
apply(KEYS[1], now, s, 3)
return 'ok'
`)

// touchScript moves LastAccess forward (never back) and refreshes the TTL,
// without rewriting any value and without bumping the version, so that a
// Touch does not make a concurrent Update start over. It is the hot path of
// every request that reads but does not change its session, so it is
// written out flat rather than with the prelude: three fields read, one
// written, no tables.
// KEYS[1] = key; ARGV = now, defidle, at.
var touchScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], '__lastAccess', '__idle', '__deadline')
if not m[1] then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
  return 'corrupt'
end
local now, at = tonumber(ARGV[1]), tonumber(ARGV[3])
local la, idle, dl = tonumber(m[1]), tonumber(ARGV[2]), 0
if m[2] then idle = tonumber(m[2]) end
if m[3] then dl = tonumber(m[3]) end
if la == nil or idle == nil or dl == nil then return 'corrupt' end
if idle <= 0 then idle = tonumber(ARGV[2]) end
local e = la + idle
if dl > 0 and dl < e then e = dl end
if now >= e then return 'expired' end
if at > la then
  redis.call('HSET', KEYS[1], '__lastAccess', ARGV[3])
  e = at + idle
  if dl > 0 and dl < e then e = dl end
end
redis.call('PEXPIRE', KEYS[1], e - now)
return 'ok'
`)

// updateScript replaces the whole record if its version is still the one
// Update read (compare-and-swap). A Touch may have moved LastAccess on
// meanwhile without changing the version; the later LastAccess wins.
// KEYS[1] = key; ARGV = now, defidle, version, token, lastAccess, idle,
// deadline, then field/value pairs (all of the record, metadata included).
var updateScript = redis.NewScript(prelude + `
local now, defidle = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = state(KEYS[1], now, defidle)
if s.st ~= 'live' then return s.st end
if s.v ~= tonumber(ARGV[3]) then
  if s.w == ARGV[4] then return 'ok' end
  return 'conflict'
end
if s.frozen == 'active' then return 'frozen' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '__v', s.v + 1, '__w', ARGV[4])
hsetRange(KEYS[1], ARGV, 8, #ARGV)
local la = tonumber(ARGV[5])
if s.la > la then
  la = s.la
  redis.call('HSET', KEYS[1], '__lastAccess', s.laRaw)
end
settle(KEYS[1], now, la, tonumber(ARGV[6]), tonumber(ARGV[7]))
return 'ok'
`)

// renewScript moves a session from KEYS[1] to KEYS[2] and applies a Change,
// in one step: RENAME keeps every field, so nothing is read into Go and back.
// It needs both keys on one server, which is why cluster clients use the
// two-phase renew instead (see the package documentation).
// ARGV = now, defidle, token, then the Change as apply reads it.
var renewScript = redis.NewScript(prelude + `
local now, defidle = tonumber(ARGV[1]), tonumber(ARGV[2])
local o = state(KEYS[1], now, defidle)
if o.st ~= 'live' then
  if o.st == 'missing' then
    local n = state(KEYS[2], now, defidle)
    if n.st == 'live' and n.w == ARGV[3] then return 'ok' end
  end
  return o.st
end
if o.frozen == 'active' then return 'frozen' end
local n = state(KEYS[2], now, defidle)
if n.st == 'live' or n.st == 'corrupt' then return 'exists' end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '__w', ARGV[3])
apply(KEYS[2], now, o, 4)
return 'ok'
`)

// freezeScript is phase one of the two-phase (cluster) renew: it marks the
// live old record as being renewed until a lease runs out, so that Saves and
// Updates wait instead of writing changes the copy would miss, and returns
// the record's fields after the status.
// KEYS[1] = old key; ARGV = now, defidle, token, lease end (Unix ms).
var freezeScript = redis.NewScript(prelude + `
local now, defidle = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = state(KEYS[1], now, defidle)
if s.st ~= 'live' then return {s.st} end
if s.frozen == 'active' and s.renewTo ~= ARGV[3] then return {'frozen'} end
redis.call('HSET', KEYS[1], '__renewTo', ARGV[3], '__renewUntil', ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, 'ok')
return all
`)

// commitScript is phase three of the two-phase renew: it deletes the old
// record if it is still frozen by this renew and the lease has not run out.
// Otherwise the caller must undo the copy: 'gone' means the old session was
// deleted meanwhile (a logout: the renew reports not found); 'lapsed' means
// the lease ran out first, so writes to the old session may have resumed and
// it must stay the live one (the renew reports a store error).
// KEYS[1] = old key; ARGV = now, token.
var commitScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], '__renewTo', '__renewUntil')
if m[1] == ARGV[2] and (tonumber(m[2]) or 0) > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 'ok'
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if m[1] == ARGV[2] then redis.call('HDEL', KEYS[1], '__renewTo', '__renewUntil') end
return 'lapsed'
`)

// unfreezeScript undoes phase one after a failed renew, if the marker is
// still this renew's.
// KEYS[1] = old key; ARGV = token.
var unfreezeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '__renewTo') == ARGV[1] then
  redis.call('HDEL', KEYS[1], '__renewTo', '__renewUntil')
end
return 'ok'
`)

// quarantineScript moves an undecodable record aside, to a key in the same
// hash slot, where an operator can inspect it until the TTL drops it.
// KEYS[1] = key, KEYS[2] = quarantine key; ARGV = TTL in ms.
var quarantineScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`)
