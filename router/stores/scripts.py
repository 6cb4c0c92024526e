"""The Lua scripts that make store operations atomic.

They decide nothing about routing: ``router.engine`` chooses the account and
``router.ledger`` computes charges, flips and renewals. The scripts only
re-check that a choice still holds (reserve) or that nobody changed the account
meanwhile (``lver`` compare-and-set), and record the result. Every key a
script touches is passed in KEYS and carries the account's hash tag
``{acc:<id>}`` (the public pool's pseudo-account: ``{pub}``, P1), so each script
runs in one Redis Cluster slot.

Every script that changes an account's hash also adds 1 to its ``ver`` field
(``lver`` only counts the ledger-field writes a compare-and-set relies on), so
that a mirror re-reads only the accounts whose ``ver`` moved (``SYNC``).
"""

from __future__ import annotations

#: KEYS: account hash, leases zset, task hash.
#: ARGV: task_id, mode, reserved_ms, lease_until, owner, at, pinned ('1'/'0'),
#:       body (JSON, kept on the task so that a survivor can route it again),
#:       created_at, checked_at (when the script is sent: the time T1 is checked at),
#:       estimate ms ('' = the policy's, kept for an H4 re-route), reroute ('1':
#:       the same task id re-routed after an H4 fail), day (the UTC day number of
#:       ``at``, epoch seconds // 86400, computed in Python).
#: Re-checks (R1, R2, T1, B1): status active, room, not a dormant backup and not
#: inside the account's inactive window (both unless pinned, R7), and for
#: fast/turbo a setting that is not relax and unreserved fast time > 0. A task
#: hash left ``expired`` by an adoption is reserved again (same task id), and one
#: left ``rerouted`` by an H4 fail when ``reroute`` is '1'.
#: H2/H3 on the shared counters, for a root task (not pinned, R7): refused when
#: the account's count for ``day`` has reached ``max_jobs_day`` ('daily_cap'),
#: when ``at`` is before ``last_routed + min_gap`` ('gap'), or when ``at`` falls
#: on a UTC day before the one already counted ('clock': another process's clock
#: went ahead; the caller routes again later). Every task reserved on a paced
#: account (pinned ones too) adds to the day's count and moves ``last_routed``,
#: in this script, so two processes can never both take the last job of a day
#: nor both land inside one gap.
#: Returns {1, in_flight, reserved_ms, jobs_day, jobs_today, last_routed, ver} or
#: {0, reason, <the account hash as a flat list>}.
RESERVE = """
local acc = KEYS[1]
local st = redis.call('HMGET', acc, 'status', 'in_flight', 'max_in_flight',
                      'fast_ms', 'reserved_ms', 'setting', 'backup', 'dormant',
                      'win_start', 'win_end', 'max_jobs_day', 'min_gap', 'jobs_day',
                      'jobs_today', 'last_routed')
if not st[1] then return {0, 'unknown_account'} end
local reason = false
local pinned = ARGV[7] == '1'
if st[1] ~= 'active' then reason = 'status'
elseif not pinned and st[7] == '1' and st[8] == '1' then reason = 'backup_dormant'
elseif tonumber(st[2]) >= tonumber(st[3]) then reason = 'room'
elseif ARGV[2] ~= 'relax' then
  if st[6] == 'relax' then reason = 'setting'
  elseif tonumber(st[4]) - tonumber(st[5]) <= 0 then reason = 'fast_time' end
end
if not reason and not pinned and st[9] and st[9] ~= '' then
  local s = tonumber(ARGV[10]) % 86400
  local a, b = tonumber(st[9]), tonumber(st[10])
  if a < b then
    if s >= a and s < b then reason = 'inactive_window' end
  elseif a > b then
    if s >= a or s < b then reason = 'inactive_window' end
  end
end
local cap = st[11] and st[11] ~= '' and tonumber(st[11]) or false
local gap = tonumber(st[12] or '0') or 0
local paced = cap or gap > 0
local day, jday = tonumber(ARGV[13]), tonumber(st[13] or '-1') or -1
local jobs = tonumber(st[14] or '0') or 0
if jday ~= day and day > jday then jday, jobs = day, 0 end
if not reason and paced and not pinned then
  local at = tonumber(ARGV[6])
  if day < jday then reason = 'clock'
  elseif cap and jobs >= cap then reason = 'daily_cap'
  elseif gap > 0 and st[15] and st[15] ~= '' and at < tonumber(st[15]) + gap then
    reason = 'gap'
  end
end
if reason then
  local out = {0, reason}
  local all = redis.call('HGETALL', acc)
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
end
local prev = redis.call('HGET', KEYS[3], 'state')
if prev and prev ~= 'expired' and not (prev == 'rerouted' and ARGV[12] == '1') then
  return {0, 'duplicate'}
end
if prev then redis.call('DEL', KEYS[3]) end
local inflight = redis.call('HINCRBY', acc, 'in_flight', 1)
local reserved = redis.call('HINCRBY', acc, 'reserved_ms', tonumber(ARGV[3]))
local ver = redis.call('HINCRBY', acc, 'ver', 1)
local last = st[15] or ''
if paced then  -- H2 count and H3 last-routed time, pinned tasks too
  jobs = jobs + 1
  if last == '' or tonumber(ARGV[6]) >= tonumber(last) then last = ARGV[6] end
  redis.call('HSET', acc, 'jobs_day', tostring(jday), 'jobs_today', tostring(jobs),
             'last_routed', last)
else
  jday, jobs = tonumber(st[13] or '-1') or -1, tonumber(st[14] or '0') or 0
end
redis.call('HSET', KEYS[3], 'state', 'flight', 'mode', ARGV[2], 'reserved_ms', ARGV[3],
           'owner', ARGV[5], 'at', ARGV[6], 'body', ARGV[8], 'created', ARGV[9],
           'est', ARGV[11])
redis.call('PERSIST', KEYS[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[1])
return {1, inflight, reserved, tostring(jday), tostring(jobs), last, ver}
"""

#: KEYS: the public pool's pseudo-account hash, its leases zset, task hash (all
#: with the ``{pub}`` tag).
#: ARGV: task_id, mode, lease_until, owner, at, body (JSON), created_at.
#: P1: a task sent to GoAPI's public pool holds no account's room or fast time,
#: only a lease, so that a survivor adopts it when its process dies (``EXPIRE``,
#: ``START`` and ``FINISH`` then treat it as any leased task; ``reserved_ms`` 0,
#: nothing is ever charged). The task hash is written as ``RESERVE`` writes it,
#: and as there, one left ``expired`` by an adoption is reserved again.
#: Returns {1, in_flight} or {0, 'duplicate'}.
HOLD = """
local prev = redis.call('HGET', KEYS[3], 'state')
if prev and prev ~= 'expired' then return {0, 'duplicate'} end
if prev then redis.call('DEL', KEYS[3]) end
local inflight = redis.call('HINCRBY', KEYS[1], 'in_flight', 1)
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[3], 'state', 'flight', 'mode', ARGV[2], 'reserved_ms', '0',
           'owner', ARGV[4], 'at', ARGV[5], 'body', ARGV[6], 'created', ARGV[7])
redis.call('PERSIST', KEYS[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
return {1, inflight}
"""

#: KEYS: task hash.
#: ARGV: owner, upstream job reference, started_at.
#: Records the job reference *before* the task starts upstream, so that a
#: survivor that adopts the task follows that job instead of starting another
#: (no task runs twice, L1 charges it once). Only the current owner of a task
#: still in flight may start it: 1, or 0 when the task was adopted meanwhile.
#: ``starts`` counts the starts (audits: never more than 1); the same start sent
#: again (the proxy retries it after a Redis stall, when it cannot know whether
#: the first one landed) changes nothing.
START = """
local t = redis.call('HMGET', KEYS[1], 'state', 'owner', 'job')
if t[1] ~= 'flight' or t[2] ~= ARGV[1] then return 0 end
if t[3] == ARGV[2] then return 1 end
redis.call('HSET', KEYS[1], 'job', ARGV[2], 'started', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'starts', 1)
return 1
"""

#: KEYS: leases zset, then the task hashes of the tasks to hand over.
#: ARGV: owner, then the task ids (same order as their KEYS).
#: Graceful shutdown: lets the lease of each task lapse now (score 0), for a
#: survivor's next pass to adopt, but only while the task is still in flight and
#: still owned by ARGV[1]. A task adopted meanwhile by another process is its
#: owner's now: its lease is left alone, so it is not adopted a second time (and
#: its job not followed by two processes). Returns how many were handed over.
HAND_OVER = """
local n = 0
for i = 2, #KEYS do
  local t = redis.call('HMGET', KEYS[i], 'state', 'owner')
  if t[1] == 'flight' and t[2] == ARGV[1]
      and redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', 0, ARGV[i])
    n = n + 1
  end
end
return n
"""

#: KEYS: account hash, leases zset, task hash.
#: ARGV: task_id, final state, expected lver ('' = no check), done ttl seconds,
#:       charged ms (kept on the task for audits), then field/value pairs
#:       computed by router.ledger.
#: Returns {1, lver, body, estimate, ver} on success (the request, for an H4
#: re-route; ``ver`` as this script left it),
#: {0, state} if the task is not in flight (an
#: idempotent repeat), {-1, <the account hash as a flat list>} if the account
#: changed meanwhile (the caller recomputes from it and retries).
FINISH = """
local t = redis.call('HMGET', KEYS[3], 'state', 'reserved_ms')
if t[1] ~= 'flight' then return {0, t[1] or 'missing'} end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'lver') ~= ARGV[3] then
  local out = {-1, ''}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
end
redis.call('HINCRBY', KEYS[1], 'in_flight', -1)
redis.call('HINCRBY', KEYS[1], 'reserved_ms', 0 - tonumber(t[2]))
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
if #ARGV > 5 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('HINCRBY', KEYS[1], 'lver', 1)
end
redis.call('HSET', KEYS[3], 'state', ARGV[2], 'charged_ms', ARGV[5])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
redis.call('ZREM', KEYS[2], ARGV[1])
local extra = redis.call('HMGET', KEYS[3], 'body', 'est')
return {1, redis.call('HGET', KEYS[1], 'lver'), extra[1] or '', extra[2] or '', ver}
"""

#: KEYS: account hash, history list.
#: ARGV: expected lver, number of history entries n, n entries, field/value pairs.
#: Compare-and-set of ledger fields (renewals L4, set_status/set_setting L5).
APPLY = """
if redis.call('HGET', KEYS[1], 'lver') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[2 + i]) end
if #ARGV > 2 + n then
  local fields = {}
  for i = 3 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
redis.call('HINCRBY', KEYS[1], 'lver', 1)
redis.call('HINCRBY', KEYS[1], 'ver', 1)
return 1
"""

#: KEYS: account hash, leases zset, then the task hashes of the candidates.
#: ARGV: now, done ttl, new owner, new lease_until, then the candidate task ids
#:       (same order as their KEYS).
#: Adopts every candidate whose lease is still at or before ``now`` and that is
#: still in flight (its owner stopped renewing it):
#: * not started upstream (no job reference): the reservation is released (room
#:   and reserved fast time come back, nothing is charged, L1), the task hash is
#:   left ``expired`` and the adopter routes the task again under the same id;
#: * started: the adopter becomes its owner with a fresh lease and follows the
#:   recorded job, which it charges once (L1).
#: Returns 7 entries per adopted task: id, 'route' or 'resume', body, created,
#: job, started, mode; then reserved_ms and at (9 in all).
EXPIRE = """
local now = tonumber(ARGV[1])
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = KEYS[i - 2]
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) <= now then
    local t = redis.call('HMGET', key, 'state', 'reserved_ms', 'job', 'body', 'created',
                         'started', 'mode', 'at')
    if t[1] == 'flight' then
      local kind = 'route'
      if t[3] and t[3] ~= '' then
        kind = 'resume'
        redis.call('HSET', key, 'owner', ARGV[3])
        redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), id)
      else
        redis.call('HINCRBY', KEYS[1], 'in_flight', -1)
        redis.call('HINCRBY', KEYS[1], 'reserved_ms', 0 - tonumber(t[2]))
        redis.call('HINCRBY', KEYS[1], 'ver', 1)
        redis.call('HSET', key, 'state', 'expired')
        redis.call('EXPIRE', key, tonumber(ARGV[2]))
        redis.call('ZREM', KEYS[2], id)
      end
      for _, v in ipairs({id, kind, t[4] or '', t[5] or '', t[3] or '', t[6] or '',
                          t[7] or '', t[2] or '0', t[8] or ''}) do
        out[#out + 1] = v
      end
    else
      redis.call('ZREM', KEYS[2], id)
    end
  end
end
return out
"""

#: KEYS: account hash.
#: ARGV: until (the pending recovery's time, exactly as ``set_status`` wrote it).
#: H1: the account returns to ``active`` only if its pending recovery is still
#: the one at ``until`` (a later ``set_status`` replaces or cancels it), so
#: however many processes see the moment, one of them recovers the account and
#: announces it. Returns {1, status it had, new lver} to that caller, {0} to the
#: others.
RECOVER = """
if redis.call('HGET', KEYS[1], 'recover_at') ~= ARGV[1] then return {0} end
local was = redis.call('HGET', KEYS[1], 'status')
redis.call('HSET', KEYS[1], 'status', 'active', 'recover_at', '')
redis.call('HINCRBY', KEYS[1], 'ver', 1)
return {1, was, redis.call('HINCRBY', KEYS[1], 'lver', 1)}
"""

#: KEYS: account hashes.
#: ARGV: the ``ver`` the caller last read of each account ('' = none: re-read it).
#: Returns, per account in KEYS order, 0 when its ``ver`` is still the one given,
#: else its whole hash as a flat list (an account whose hash has no ``ver`` yet,
#: as loaded, is always returned). On Redis Cluster it is sent once per account
#: (one slot per call).
SYNC = """
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], 'ver')
  if v and v == ARGV[i] then out[i] = 0 else out[i] = redis.call('HGETALL', KEYS[i]) end
end
return out
"""
