-- Token buckets and circuit breakers per {tenant, source host} (docs/architecture.md §4).
--
-- Everything above the first "-- name:" header is the shared prelude: the loader prepends it
-- to every script of this file, so each script is self-contained for SCRIPT LOAD / EVALSHA.
--
-- Calling convention (every script):
--   KEYS[1] = config hash {prefix}c:{tenant}   (persistent: configs and overrides)
--   KEYS[2] = index set   {prefix}i:{tenant}   (hosts with a live bucket hash)
--   KEYS[3..] = bucket hashes {prefix}b:{tenant}:{host}
--   ARGV[1..12] = now, default capacity, default refill/s, idle TTL s, failure ratio,
--                 min volume, window s, open s, decrease factor, min refill fraction,
--                 recover/s, retry-after of an indefinite zero-rate override
--   ARGV[13..] = script specific.
-- Time is ALWAYS the caller's `now` (epoch seconds); Redis TIME is never read, so tests move
-- time instead of sleeping. Numbers go back to Python as %.17g strings (exact doubles):
-- Redis would truncate a Lua float reply to an integer.

local NOW = tonumber(ARGV[1])
local P = {
  dcap = tonumber(ARGV[2]),
  drate = tonumber(ARGV[3]),
  ttl = tonumber(ARGV[4]),
  ratio = tonumber(ARGV[5]),
  min_volume = tonumber(ARGV[6]),
  window = tonumber(ARGV[7]),
  open_s = tonumber(ARGV[8]),
  decrease = tonumber(ARGV[9]),
  min_frac = tonumber(ARGV[10]),
  recover = tonumber(ARGV[11]),
  stopped_retry = tonumber(ARGV[12]),
}
local ARG0 = 12
local CFG, IDX = KEYS[1], KEYS[2]

local function fmt(x)
  return string.format('%.17g', x)
end

-- HMGET answers false for a missing field.
local function num(v, default)
  if v and v ~= '' then
    return tonumber(v)
  end
  return default
end

local FIELDS = {'tok', 'ts', 'frac', 'pu', 'preason', 'cs', 'cuntil', 'wstart', 'wsucc',
                'wfail', 'probe_at', 'radj'}

-- A bucket as a Lua table. Configuration: the host's own, else the tenant default
-- (host ""), else the store default from ARGV. A bucket never seen before starts full.
local function load(bkey, host)
  local f = redis.call('HMGET', bkey, unpack(FIELDS))
  local c = redis.call('HMGET', CFG, 'cap:' .. host, 'rate:' .. host, 'cap:', 'rate:',
                       'or:' .. host, 'ou:' .. host, 'on:' .. host)
  local b = {key = bkey, host = host, exists = f[2] ~= false}
  if c[1] then
    b.cap, b.rate = tonumber(c[1]), tonumber(c[2])
  elseif c[3] then
    b.cap, b.rate = tonumber(c[3]), tonumber(c[4])
  else
    b.cap, b.rate = P.dcap, P.drate
  end
  b.tok = num(f[1], b.cap)
  b.ts = num(f[2], NOW)
  b.frac = num(f[3], 1)           -- effective rate = frac * configured rate (adaptive)
  b.pu = num(f[4], 0)             -- paused until (throttle), 0 = never paused
  b.preason = f[5] or ''
  b.cs = f[6] or 'closed'         -- closed | open | half_open
  b.cuntil = num(f[7], 0)         -- open until
  b.wstart = num(f[8], 0)         -- circuit window start, 0 = no window yet
  b.wsucc = num(f[9], 0)
  b.wfail = num(f[10], 0)
  b.probe_at = num(f[11], 0)      -- when the half-open probe token went out, 0 = not yet
  b.radj = num(f[12], 0)          -- last adaptive step (throttle or record_results)
  if c[5] then
    b.orate = tonumber(c[5])
    b.ountil = num(c[6], nil)
    b.oreason = c[7] or ''
  else
    b.oreason = ''
  end
  return b
end

local function base_rate(b)
  return b.rate * b.frac
end

local function refill(b, from, to, rate)
  if to > from and rate > 0 then
    b.tok = math.min(b.cap, b.tok + rate * (to - from))
  end
end

-- Bring a bucket to NOW: refill at the rate in force (nothing accrues while paused), end an
-- expired override, and move an open circuit whose time is up to half_open.
local function advance(b)
  local start = math.max(b.ts, b.pu)
  if b.orate and b.ountil and b.ountil <= NOW then
    -- The override ended between the last update and NOW: each part at its own rate.
    refill(b, start, b.ountil, b.orate)
    start = math.max(start, b.ountil)
    b.orate, b.ountil, b.oreason, b.oexpired = nil, nil, '', true
  end
  refill(b, start, NOW, b.orate or base_rate(b))
  if b.tok > b.cap then
    b.tok = b.cap
  end
  if NOW > b.ts then
    b.ts = NOW
  end
  if b.cs == 'open' and NOW >= b.cuntil then
    b.cs, b.probe_at = 'half_open', 0
  end
end

-- The index set lives at least as long as the longest-lived bucket saved into it; finish()
-- extends it once per script call.
local INDEX_TTL = 0

local function finish()
  if INDEX_TTL > 0 and redis.call('TTL', IDX) < INDEX_TTL then
    redis.call('EXPIRE', IDX, INDEX_TTL)
  end
end

local function save(b)
  redis.call('HSET', b.key, 'tok', fmt(b.tok), 'ts', fmt(b.ts), 'frac', fmt(b.frac),
             'pu', fmt(b.pu), 'preason', b.preason, 'cs', b.cs, 'cuntil', fmt(b.cuntil),
             'wstart', fmt(b.wstart), 'wsucc', fmt(b.wsucc), 'wfail', fmt(b.wfail),
             'probe_at', fmt(b.probe_at), 'radj', fmt(b.radj))
  -- Idle buckets expire; a pause or an open circuit keeps the bucket at least that long more.
  local ttl = math.ceil(P.ttl + math.max(0, b.pu - NOW, b.cuntil - NOW))
  redis.call('EXPIRE', b.key, ttl)
  redis.call('SADD', IDX, b.host)
  if ttl > INDEX_TTL then
    INDEX_TTL = ttl
  end
  if b.oexpired then
    redis.call('HDEL', CFG, 'or:' .. b.host, 'ou:' .. b.host, 'on:' .. b.host)
  end
end

-- {capacity, refill, effective refill, tokens, paused_until|'', reason, circuit, updated_at,
--  exists 1|0}
local function state_reply(b)
  local eff = b.orate or base_rate(b)
  local pu = 0
  local reason = ''
  if b.pu > NOW then
    pu, reason = b.pu, b.preason
  end
  if b.orate then
    if b.orate <= 0 and b.ountil and b.ountil > pu then
      pu = b.ountil
    end
    if reason == '' then
      reason = b.oreason
    end
  end
  local exists = '0'
  if b.exists then
    exists = '1'
  end
  local pu_s = ''
  if pu > 0 then
    pu_s = fmt(pu)
  end
  return {fmt(b.cap), fmt(b.rate), fmt(eff), fmt(b.tok), pu_s, reason, b.cs, fmt(b.ts), exists}
end

-- Take up to n tokens: {granted, retry_after_s, remaining tokens, deny_reason}; the
-- acquire script sends it as one space-separated string (deny_reason may be empty).
-- Takes up to n whole tokens; with whole, all n or none (the rest's wait is still told).
local function take(b, n, whole)
  advance(b)
  if n <= 0 then
    return {0, '0', fmt(b.tok), ''}
  end
  local rate = b.orate or base_rate(b)
  local wait = -1
  if b.pu > NOW then
    wait = b.pu - NOW
  end
  if rate <= 0 then
    -- Operator override to rate 0: a stop until the override ends.
    local stop = P.stopped_retry
    if b.ountil then
      stop = b.ountil - NOW
    end
    wait = math.max(wait, stop)
    rate = base_rate(b)
  end
  if wait >= 0 then
    local need = math.max(0, math.min(n, b.cap) - b.tok)
    return {0, fmt(wait + need / rate), fmt(b.tok), 'paused'}
  end
  if b.cs == 'open' then
    return {0, fmt(b.cuntil - NOW), fmt(b.tok), 'circuit_open'}
  end
  local limit = n
  if b.cs == 'half_open' then
    if b.probe_at > 0 and NOW < b.probe_at + P.open_s then
      -- The probe is out; another goes only if its verdict has not come within open_s.
      return {0, fmt(b.probe_at + P.open_s - NOW), fmt(b.tok), 'circuit_open'}
    end
    limit = 1
  end
  local granted = math.min(limit, math.floor(b.tok))
  if whole and granted < n then
    granted = 0
  end
  b.tok = b.tok - granted
  if b.cs == 'half_open' and granted > 0 then
    b.probe_at = NOW
  end
  local rest = n - granted
  if rest == 0 then
    return {granted, '0', fmt(b.tok), ''}
  end
  if b.cs == 'half_open' and (granted == limit or limit < n) then
    return {granted, fmt(P.open_s), fmt(b.tok), 'circuit_open'}
  end
  -- When the rest (at most a full bucket) will have accrued.
  local need = math.max(0, math.min(rest, b.cap) - b.tok)
  return {granted, fmt(need / rate), fmt(b.tok), 'tokens'}
end

local function open_circuit(b)
  b.cs, b.cuntil, b.probe_at = 'open', NOW + P.open_s, 0
  b.wstart, b.wsucc, b.wfail = 0, 0, 0
end

-- name: bucket_acquire
-- KEYS[3..]: one bucket per request (a key may repeat: requests apply in order).
-- ARGV[13..]: host, n, whole ("1": all or nothing) per request.
local out = {}
for i = 3, #KEYS do
  local j = ARG0 + (i - 3) * 3
  local b = load(KEYS[i], ARGV[j + 1])
  local r = take(b, tonumber(ARGV[j + 2]), ARGV[j + 3] == '1')
  save(b)
  -- One flat string per request: far cheaper for the client to parse than a nested array.
  out[#out + 1] = r[1] .. ' ' .. r[2] .. ' ' .. r[3] .. ' ' .. r[4]
end
finish()
return out

-- name: bucket_state
-- Read only. ARGV[13] = host.
local b = load(KEYS[3], ARGV[ARG0 + 1])
local stored_ts = b.ts
advance(b)
b.ts = stored_ts  -- updated_at is the last write, not this read
return state_reply(b)

-- name: bucket_configure
-- ARGV[13..15] = host, capacity, refill/s.
local host = ARGV[ARG0 + 1]
local b = load(KEYS[3], host)
advance(b)
redis.call('HSET', CFG, 'cap:' .. host, ARGV[ARG0 + 2], 'rate:' .. host, ARGV[ARG0 + 3])
b.cap, b.rate = tonumber(ARGV[ARG0 + 2]), tonumber(ARGV[ARG0 + 3])
if not b.exists or b.tok > b.cap then
  b.tok = b.cap
end
save(b)
finish()
return state_reply(b)

-- name: bucket_throttle
-- Upstream 429/503. ARGV[13..16] = host, retry_after_s, jitter_s, reason.
-- Pause until now + retry_after + jitter (never shortens a pause), drop the tokens (nothing
-- accrues while paused, so the pause does not end in a burst), and decrease the effective
-- rate once per pause: reports that arrive while already paused only extend it.
local b = load(KEYS[3], ARGV[ARG0 + 1])
advance(b)
local untl = NOW + tonumber(ARGV[ARG0 + 2]) + tonumber(ARGV[ARG0 + 3])
if b.pu <= NOW then
  b.frac = math.max(P.min_frac, b.frac * P.decrease)
end
if untl > b.pu then
  b.pu = untl
end
b.preason = ARGV[ARG0 + 4]
b.tok = 0
b.radj = NOW
save(b)
finish()
return state_reply(b)

-- name: bucket_record
-- ARGV[13..15] = host, successes, failures.
local b = load(KEYS[3], ARGV[ARG0 + 1])
advance(b)
local succ, fail = tonumber(ARGV[ARG0 + 2]), tonumber(ARGV[ARG0 + 3])
-- Additive increase: a report with successes credits the time since the last adaptive step
-- (or the end of the pause), frac += recover * seconds, up to 1 (the configured rate).
if succ > 0 and NOW >= b.pu and b.radj > 0 then
  local from = math.max(b.radj, b.pu)
  if NOW > from then
    b.frac = math.min(1, b.frac + P.recover * (NOW - from))
  end
end
if NOW > b.radj then
  b.radj = NOW
end
if b.cs == 'closed' then
  if b.wstart == 0 or NOW - b.wstart >= P.window then
    b.wstart, b.wsucc, b.wfail = NOW, 0, 0
  end
  b.wsucc, b.wfail = b.wsucc + succ, b.wfail + fail
  local total = b.wsucc + b.wfail
  if total > 0 and total >= P.min_volume and b.wfail / total >= P.ratio then
    open_circuit(b)
  end
elseif b.cs == 'half_open' then
  if fail > 0 then
    open_circuit(b)
  elseif succ > 0 then
    b.cs, b.probe_at = 'closed', 0
    b.wstart, b.wsucc, b.wfail = NOW, 0, 0
  end
end
-- While open, results of calls made before it opened are ignored.
save(b)
finish()
return state_reply(b)

-- name: bucket_override
-- ARGV[13..16] = host, refill/s ('' clears), until ('' = until cleared), reason.
local host = ARGV[ARG0 + 1]
local b = load(KEYS[3], host)
advance(b)
if ARGV[ARG0 + 2] == '' then
  redis.call('HDEL', CFG, 'or:' .. host, 'ou:' .. host, 'on:' .. host)
  b.orate, b.ountil, b.oreason = nil, nil, ''
else
  redis.call('HSET', CFG, 'or:' .. host, ARGV[ARG0 + 2], 'ou:' .. host, ARGV[ARG0 + 3],
             'on:' .. host, ARGV[ARG0 + 4])
  b.orate, b.ountil, b.oreason = tonumber(ARGV[ARG0 + 2]), num(ARGV[ARG0 + 3], nil),
                                 ARGV[ARG0 + 4]
end
b.oexpired = nil
save(b)
finish()
return state_reply(b)

-- name: bucket_index_prune
-- KEYS[3..]: bucket hashes; ARGV[13..]: their hosts. Drops index entries of expired buckets.
local pruned = 0
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    pruned = pruned + redis.call('SREM', IDX, ARGV[ARG0 + i - 2])
  end
end
return pruned
