-- Token buckets and circuit breakers per {tenant, source host} (docs/architecture.md §4,
-- docs/ratelimits.md for the adaptive algorithm and its parameters).
--
-- Everything above the first "-- name:" header is the shared prelude: the loader prepends it
-- to every script of this file, so each script is self-contained for SCRIPT LOAD / EVALSHA.
--
-- Calling convention (every script):
--   KEYS[1] = config hash {prefix}c:{tenant}   (persistent: configs and overrides)
--   KEYS[2] = index set   {prefix}i:{tenant}   (hosts with a live bucket hash)
--   KEYS[3..] = bucket hashes {prefix}b:{tenant}:{host}
--   ARGV[1..19] = now, default capacity, default refill/s, idle TTL s, failure ratio,
--                 min volume, window s, open s, decrease factor, min refill/s,
--                 probe/s, retry-after of an indefinite zero-rate override, goodput margin,
--                 slow-start/s, burst s, goodput window s, min goodput window s, gentle cut,
--                 probe hold s
--   ARGV[20..] = script specific.
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
  min_rate = tonumber(ARGV[10]),
  probe = tonumber(ARGV[11]),
  stopped_retry = tonumber(ARGV[12]),
  margin = tonumber(ARGV[13]),
  slow_start = tonumber(ARGV[14]),
  burst_s = tonumber(ARGV[15]),
  gwindow = tonumber(ARGV[16]),
  gmin = tonumber(ARGV[17]),
  gentle = tonumber(ARGV[18]),
  hold = tonumber(ARGV[19]),
}
local ARG0 = 19
local CFG, IDX = KEYS[1], KEYS[2]
-- A goodput sample lasts long enough for about this many successes at the rate in force.
local SAMPLE_SUCCESSES = 5
-- A sample at least this share of the rate sent means the upstream delivered everything.
local FULL_DELIVERY = 0.95
-- The bucket binds (probing is allowed) while the goodput is at least this share of its rate.
local BUSY_SHARE = 0.7
-- Leaving fast growth at a 429: at least this share of the rate in force, then probe at
-- APPROACH_PER_S until the next 429 pins the ceiling.
local APPROACH_CUT = 0.6
local APPROACH_PER_S = 0.1
-- A 429 this soon after a pause's end, with no goodput sample yet, ended a flood.
local FLOOD_S = 0.5
-- A decrease with a sample behind it, outside fast growth, keeps at least this share.
local DEEPEST_CUT = 0.8
-- A decrease to at least this share of the previous rate is to about the same rate; each
-- such decrease in a row doubles the hold, at most this many times.
local SAME_LEVEL = 0.9
local MAX_HOLD_DOUBLINGS = 3
-- An episode this long at least (and as long as its pause) shows a sustained rate.
local SUSTAINED_S = 2
-- A 429 while approaching or probing with a learnt burst of 1: keep this share of the rate.
local SPACED_CUT = 0.95

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

-- A bucket hash's fields and what a missing one reads as ('tok' and 'ts' default to a full
-- bucket at NOW: a bucket never seen before starts full).
local DEFAULTS = {
  tok = false,
  ts = false,
  est = 0,          -- learnt rate (tokens/s), 0 = nothing learnt yet
  pu = 0,           -- paused until (throttle), 0 = never paused
  preason = '',
  cs = 'closed',    -- closed | open | half_open
  cuntil = 0,       -- open until
  wstart = 0,       -- circuit window start, 0 = no window yet
  wsucc = 0,
  wfail = 0,
  probe_at = 0,     -- when the half-open probe token went out, 0 = not yet
  radj = 0,         -- last adaptive step (throttle or record_results)
  cut = 0,          -- last decrease (a throttle), 0 = never throttled
  ss = 0,           -- goodput sample: start, successes in it
  sn = 0,
  gl = 0,           -- last complete sample (successes/s)
  gm = 0,           -- largest sample since the last decrease
  es = 0,           -- episode (since the last decrease): start, successes
  en = 0,
  fast = 1,         -- 1: probe at slow_start (no sampled goodput behind the rate)
  lo = 0,           -- a rate the upstream has sustained (episode average), 0 = none
  bc = 0,           -- learnt burst (most tokens held), 0 = none: burst_s of the rate
  bt = 0,           -- last time the bucket denied a request for want of tokens
  hold = 0,         -- no upward probing before this time
  fl = -1,          -- successes of the flood the pause answered, -1 = no flood
  an = 0,           -- successes reported since the end of the last pause
  hn = 0,           -- decreases in a row to about the same rate (each holds longer)
}
local TEXT_FIELDS = {preason = true, cs = true}
local FIELDS = {'tok', 'ts', 'est', 'pu', 'preason', 'cs', 'cuntil', 'wstart', 'wsucc',
                'wfail', 'probe_at', 'radj', 'cut', 'ss', 'sn', 'gl', 'gm', 'es', 'en', 'fast',
                'lo', 'bc', 'bt', 'hold', 'fl', 'an', 'hn'}
-- What taking tokens reads and writes (advance, capacity, take): the hot path reads only
-- these (the adaptive state's twenty-odd other fields are for throttle and record). A field
-- it does not load stays nil in the table, so code that starts to need one fails loudly.
local TAKE_FIELDS = {'tok', 'ts', 'est', 'pu', 'cs', 'cuntil', 'probe_at', 'bc', 'bt'}

-- A bucket as a Lua table, with the given fields (default: all). Configuration: the host's
-- own, else the tenant default (host ""), else the store default from ARGV.
local function load(bkey, host, names)
  names = names or FIELDS
  local f = redis.call('HMGET', bkey, unpack(names))
  local c = redis.call('HMGET', CFG, 'cap:' .. host, 'rate:' .. host, 'cap:', 'rate:',
                       'or:' .. host, 'ou:' .. host, 'on:' .. host)
  local b = {key = bkey, host = host, exists = false}
  if c[1] then
    -- The host's own config is the operator's word on that host: a ceiling.
    b.cap, b.rate, b.own = tonumber(c[1]), tonumber(c[2]), true
  elseif c[3] then
    b.cap, b.rate = tonumber(c[3]), tonumber(c[4])
  else
    b.cap, b.rate = P.dcap, P.drate
  end
  -- What was read, so save() writes only the fields that changed (an acquire moves two or
  -- three; formatting and writing all of them cost a third of its throughput).
  local orig = {}
  for i, name in ipairs(names) do
    local v = f[i]
    if name == 'ts' then
      b.exists = v ~= false
    end
    if TEXT_FIELDS[name] then
      v = v or DEFAULTS[name]
    elseif name == 'tok' then
      v = num(v, b.cap)
    elseif name == 'ts' then
      v = num(v, NOW)
    else
      v = num(v, DEFAULTS[name])
    end
    b[name], orig[name] = v, v
  end
  b.names, b.orig = names, orig
  if c[5] then
    b.orate = tonumber(c[5])
    b.ountil = num(c[6], nil)
    b.oreason = c[7] or ''
  else
    b.oreason = ''
  end
  return b
end

-- The adaptive rate: what was learnt (capped by a host's own config), else the config.
local function base_rate(b)
  if b.est > 0 then
    if b.own then
      return math.min(b.rate, b.est)
    end
    return b.est
  end
  return b.rate
end

-- Once a rate is learnt the bucket holds at most burst_s seconds of it (at least one token):
-- a learnt rate near the upstream's must not be spent as one burst the upstream refuses.
local function capacity(b)
  if b.est > 0 then
    local learnt = math.max(1, base_rate(b) * P.burst_s)
    if b.bc > 0 then
      learnt = math.min(learnt, b.bc)
    end
    if b.own then
      return math.min(b.cap, learnt)
    end
    return learnt
  end
  return b.cap
end

local function refill(b, from, to, rate)
  if to > from and rate > 0 then
    b.tok = math.min(capacity(b), b.tok + rate * (to - from))
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
  if b.tok > capacity(b) then
    b.tok = capacity(b)
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
  -- A new bucket writes every field it loaded, an existing one only what changed (a field
  -- never written reads as its default again).
  local args, orig, fresh = {}, b.orig, not b.exists
  for _, name in ipairs(b.names) do
    local v = b[name]
    if fresh or v ~= orig[name] then
      args[#args + 1] = name
      args[#args + 1] = TEXT_FIELDS[name] and v or fmt(v)
    end
  end
  if #args > 0 then
    redis.call('HSET', b.key, unpack(args))
  end
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

-- Take up to n tokens: {granted, retry_after_s, remaining tokens, deny_reason, rate in force}; the
-- acquire script sends it as one space-separated string (deny_reason may be empty).
-- Takes up to n whole tokens; with whole, all n or none (the rest's wait is still told).
local function take(b, n, whole)
  advance(b)
  if n <= 0 then
    return {0, '0', fmt(b.tok), '', fmt(b.orate or base_rate(b))}
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
    local need = math.max(0, math.min(n, capacity(b)) - b.tok)
    return {0, fmt(wait + need / rate), fmt(b.tok), 'paused', fmt(rate)}
  end
  if b.cs == 'open' then
    return {0, fmt(b.cuntil - NOW), fmt(b.tok), 'circuit_open', fmt(rate)}
  end
  local limit = n
  if b.cs == 'half_open' then
    if b.probe_at > 0 and NOW < b.probe_at + P.open_s then
      -- The probe is out; another goes only if its verdict has not come within open_s.
      return {0, fmt(b.probe_at + P.open_s - NOW), fmt(b.tok), 'circuit_open', fmt(rate)}
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
    return {granted, '0', fmt(b.tok), '', fmt(rate)}
  end
  if b.cs == 'half_open' and (granted == limit or limit < n) then
    return {granted, fmt(P.open_s), fmt(b.tok), 'circuit_open', fmt(rate)}
  end
  -- When the rest (at most a full bucket) will have accrued. The bucket binds: demand beyond
  -- its rate (what lets it probe upward, docs/ratelimits.md).
  b.bt = NOW
  local need = math.max(0, math.min(rest, capacity(b)) - b.tok)
  return {granted, fmt(need / rate), fmt(b.tok), 'tokens', fmt(rate)}
end

-- Goodput samples: successes per second over consecutive intervals of busy time, each at
-- least gmin and long enough for ~SAMPLE_SUCCESSES successes at the rate in force (at most
-- gwindow). A throttle restarts sampling at the end of its pause (successes reported during
-- a pause came from requests sent before it). `gl` is the last complete sample (does the
-- bucket bind?), `gm` the largest since the last decrease (what the upstream delivered: a
-- max filter, as BBR keeps the bottleneck bandwidth).
local function sample_len(b)
  return math.min(P.gwindow, math.max(P.gmin, SAMPLE_SUCCESSES / base_rate(b)))
end

local function count_goodput(b, n)
  if b.es <= 0 then
    b.es = NOW
  end
  b.en = b.en + n
  if NOW >= b.pu then
    b.an = b.an + n
  end
  if b.ss <= 0 then
    -- The first report opens the first sample: what it reports was delivered before.
    b.ss = NOW
    return
  end
  if NOW < b.ss then
    return
  end
  b.sn = b.sn + n
  if NOW - b.ss >= sample_len(b) then
    b.gl = b.sn / (NOW - b.ss)
    b.gm = math.max(b.gm, b.gl)
    b.ss, b.sn = NOW, 0
  end
end

-- The largest goodput sample since the last decrease, counting the one in progress once it
-- is gmin long (nil: none yet).
local function sampled_goodput(b)
  local g = nil
  if b.gm > 0 then
    g = b.gm
  end
  if b.ss > 0 and NOW - b.ss >= P.gmin and b.sn >= 1 then
    g = math.max(g or 0, b.sn / (NOW - b.ss))
  end
  return g
end

-- What the whole episode since the last decrease delivered per second, pause included
-- (nil: nothing yet). The upstream refills during a pause, so after a flood this is about
-- its rate plus its burst spread over the episode.
local function episode_goodput(b)
  if b.es > 0 and NOW > b.es and b.en >= 1 then
    return b.en / (NOW - b.es)
  end
  return nil
end

-- The rate to learn from a 429 while sending at `eff` (docs/ratelimits.md):
-- * a sample shows the limit (the upstream delivered clearly less than we sent): a margin
--   under that goodput;
-- * everything we sent was delivered (the 429 came as the upstream's burst ran out): a
--   gentle cut, no deeper than the episode's average unless we were probing fast (then
--   the 429 marks the ceiling, as a loss ends TCP's slow start);
-- * no sample at all (a flood answered 429 within milliseconds of the pause's end): the
--   episode's average, else a blind cut, and probe fast afterwards.
local function learn(b, eff)
  local g = sampled_goodput(b)
  local episode = episode_goodput(b)
  if g and b.fast ~= 1 and b.bc == 1 and g >= BUSY_SHARE * eff then
    -- Approaching or probing an upstream that refuses bursts, calls evenly spaced, and it
    -- delivered most of the rate: the last call came just under its spacing, so the rate was
    -- just above its own (the goodput samples lag a rising rate).
    return eff * SPACED_CUT, 0
  end
  if g and g < FULL_DELIVERY * eff then
    if b.fast == 1 and b.est > 0 then
      -- Growing fast from a learnt rate, the samples lag it: the 429 marks the ceiling,
      -- approach it.
      return math.max(g * P.margin, eff * APPROACH_CUT), 2
    end
    return g * P.margin, 0
  end
  if g then
    local cut = eff * P.gentle
    if b.fast == 1 and b.est > 0 then
      return cut, 2  -- growing fast: the 429 marks the ceiling, approach it
    end
    if b.fast == 0 and episode and episode < cut then
      cut = math.max(episode, eff * DEEPEST_CUT)
    end
    return cut, 0
  end
  local cut = eff * P.decrease
  if b.est > 0 and b.fast ~= 1 then
    -- Refused before a sample while approaching or holding a learnt rate: that rate is too
    -- high, not unknown (the episode, mostly pause, says nothing); cut and approach again.
    return cut, 2
  end
  if episode and episode < cut then
    cut = episode
  end
  return cut, 1
end

-- What the upstream sustained over the episode ending now: its successes since the pause's
-- end, less the burst it may have refilled during the pause (our learnt burst), over the time
-- since; about a lower bound of its rate. Only once the bucket sent for SUSTAINED_S and for
-- at least as long as it paused (nil: no such episode; the first, before any pause, started
-- on a full upstream burst).
local function sustained_rate(b)
  if b.cut <= 0 or b.pu <= b.cut or NOW - b.pu < math.max(SUSTAINED_S, b.pu - b.cut) then
    return nil
  end
  -- What it delivered since the pause's end, less the burst it may have refilled meanwhile.
  return math.max(0, b.an - capacity(b)) / (NOW - b.pu)
end

local function open_circuit(b)
  b.cs, b.cuntil, b.probe_at = 'open', NOW + P.open_s, 0
  b.wstart, b.wsucc, b.wfail = 0, 0, 0
end

-- name: bucket_acquire
-- KEYS[3..]: one bucket per request (a key may repeat: requests apply in order).
-- ARGV[20..]: host, n, whole ("1": all or nothing) per request.
-- Reply per request: "granted retry_after remaining rate deny_reason" (rate: the refill in
-- force, so the caller can spread what it defers; deny_reason last, it may be empty).
local out = {}
for i = 3, #KEYS do
  local j = ARG0 + (i - 3) * 3
  local b = load(KEYS[i], ARGV[j + 1], TAKE_FIELDS)
  local r = take(b, tonumber(ARGV[j + 2]), ARGV[j + 3] == '1')
  save(b)
  -- One flat string per request: far cheaper for the client to parse than a nested array.
  out[#out + 1] = r[1] .. ' ' .. r[2] .. ' ' .. r[3] .. ' ' .. r[5] .. ' ' .. r[4]
end
finish()
return out

-- name: bucket_state
-- Read only. ARGV[20] = host.
local b = load(KEYS[3], ARGV[ARG0 + 1])
local stored_ts = b.ts
advance(b)
b.ts = stored_ts  -- updated_at is the last write, not this read
return state_reply(b)

-- name: bucket_configure
-- ARGV[20..22] = host, capacity, refill/s.
local host = ARGV[ARG0 + 1]
local b = load(KEYS[3], host)
advance(b)
redis.call('HSET', CFG, 'cap:' .. host, ARGV[ARG0 + 2], 'rate:' .. host, ARGV[ARG0 + 3])
b.cap, b.rate = tonumber(ARGV[ARG0 + 2]), tonumber(ARGV[ARG0 + 3])
b.own = true
if not b.exists or b.tok > capacity(b) then
  b.tok = capacity(b)
end
save(b)
finish()
return state_reply(b)

-- name: bucket_throttle
-- Upstream 429 (or a 5xx with Retry-After). ARGV[20..23] = host, retry_after_s, jitter_s,
-- reason. Once per episode: a report while the bucket is paused came from a request sent
-- before the pause (nothing is admitted during it) and changes nothing, so the host honours
-- one Retry-After, not one per job. Otherwise: learn the rate from the goodput that preceded
-- the 429 (else cut multiplicatively), pause until now + retry_after + jitter, drop the
-- tokens (the pause does not end in a burst) and start a new goodput window at its end.
local b = load(KEYS[3], ARGV[ARG0 + 1])
advance(b)
if b.pu <= NOW then
  local eff = base_rate(b)
  local sustained = sustained_rate(b)
  if sustained then
    b.lo = math.max(b.lo, sustained)
  end
  b.fl = -1
  if not sampled_goodput(b) then
    -- A flood (nothing bound it) answered 429 at once: what the upstream delivered since it
    -- began (since the pause's end, else since the first report) is about its burst, and
    -- becomes ours.
    -- Successes answered after the 429 are counted during the pause (bucket_record).
    local flood = b.en
    if b.cut > 0 then
      flood = b.sn
    end
    if b.cut <= 0 or NOW - b.pu < FLOOD_S then
      b.fl = flood
      if flood >= 1 then
        b.bc = math.max(1, math.floor(flood / 2))
      end
    end
  end
  if b.lo > 0 and eff <= b.lo and capacity(b) > 1 then
    -- Refused while sending no faster than the upstream has sustained: it refuses closely
    -- spaced calls (a burst smaller than ours), not the rate. Halve the burst, keep the rate.
    b.bc = math.max(1, math.floor(capacity(b) / 2))
  else
    if b.lo > 0 and eff <= b.lo then
      -- Refused at a rate it sustained, already without bursts: its rate fell.
      b.lo = sustained or 0
    end
    local est, fast = learn(b, eff)
    if b.lo > 0 and fast ~= 1 then
      est = math.max(est, math.min(eff, b.lo))
    end
    if fast == 0 and b.fast == 0 and est >= SAME_LEVEL * b.est then
      b.hn = b.hn + 1
    else
      b.hn = 0
    end
    b.est, b.fast = est, fast
    if fast == 0 then
      -- The probe past the ceiling cost a pause again, at about the same rate: the rate is
      -- known, probe half as often.
      b.hold = NOW + P.hold * 2 ^ math.min(b.hn, MAX_HOLD_DOUBLINGS)
    else
      b.hold = 0
    end
  end
  b.est = math.max(P.min_rate, b.est)
  b.cut = NOW
  b.pu = NOW + tonumber(ARGV[ARG0 + 2]) + tonumber(ARGV[ARG0 + 3])
  b.preason = ARGV[ARG0 + 4]
  b.tok = 0
  b.radj = NOW
  b.ss, b.sn, b.gm = b.pu, 0, 0
  b.es, b.en, b.an = NOW, 0, 0
  save(b)
  finish()
  local reply = state_reply(b)
  reply[10] = '1'
  return reply
end
local reply = state_reply(b)
reply[10] = '0'
return reply

-- name: bucket_record
-- ARGV[20..22] = host, successes, failures.
local b = load(KEYS[3], ARGV[ARG0 + 1])
advance(b)
local succ, fail = tonumber(ARGV[ARG0 + 2]), tonumber(ARGV[ARG0 + 3])
if succ > 0 then
  count_goodput(b, succ)
end
if b.fl >= 0 then
  if NOW < b.pu then
    -- Answers to the flood that the pause answered: its successes are the upstream's burst.
    b.fl = b.fl + succ
    if b.fl >= 1 then
      b.bc = math.max(1, math.floor(b.fl / 2))
    end
  else
    b.fl = -1
  end
end
-- Probe upward, only while the bucket binds (the goodput uses most of the rate: RFC 7661's
-- rule that an idle or application-limited sender learns nothing about the path), credited
-- for the time since the later of the previous adaptive step and the end of the pause.
if succ > 0 and NOW >= b.pu and b.radj > 0 and not b.orate then
  local from = math.max(b.radj, b.pu)
  local eff = base_rate(b)
  local g = b.gl
  local ceiling = b.rate
  if not b.own then
    ceiling = math.huge
  end
  local binds = g > 0 and g >= BUSY_SHARE * eff
  if b.fast == 1 and b.bt >= from then
    binds = true  -- growing: demand was refused for want of tokens since the last step
  end
  if NOW > from and NOW >= b.hold and binds and eff < ceiling then
    local gain = P.probe
    if b.fast == 1 then
      gain = P.slow_start  -- no 429 yet (a default far below the upstream), or no sample
    elseif b.fast == 2 then
      gain = APPROACH_PER_S
    end
    b.est = math.min(ceiling, eff * (1 + gain * (NOW - from)))
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
-- ARGV[20..23] = host, refill/s ('' clears), until ('' = until cleared), reason.
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
-- KEYS[3..]: bucket hashes; ARGV[20..]: their hosts. Drops index entries of expired buckets.
local pruned = 0
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    pruned = pruned + redis.call('SREM', IDX, ARGV[ARG0 + i - 2])
  end
end
return pruned
