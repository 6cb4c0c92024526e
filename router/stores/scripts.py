"""The Lua scripts that make store operations atomic.

They decide nothing about routing: ``router.engine`` chooses the account and
``router.ledger`` computes charges, flips and renewals. The scripts only
re-check that a choice still holds (reserve) or that nobody changed the account
meanwhile (``lver`` compare-and-set), and record the result. Every key a
script touches is passed in KEYS and carries the account's hash tag
``{acc:<id>}``, so each script runs in one Redis Cluster slot.
"""

from __future__ import annotations

#: KEYS: account hash, leases zset, task hash.
#: ARGV: task_id, mode, reserved_ms, lease_until, owner, at.
#: Re-checks (R1, R2): status active, room, and for fast/turbo a setting that is
#: not relax and unreserved fast time > 0. Returns {1, in_flight, reserved_ms}
#: or {0, reason, <the account hash as a flat list>}.
RESERVE = """
local acc = KEYS[1]
local st = redis.call('HMGET', acc, 'status', 'in_flight', 'max_in_flight',
                      'fast_ms', 'reserved_ms', 'setting')
if not st[1] then return {0, 'unknown_account'} end
local reason = false
if st[1] ~= 'active' then reason = 'status'
elseif tonumber(st[2]) >= tonumber(st[3]) then reason = 'room'
elseif ARGV[2] ~= 'relax' then
  if st[6] == 'relax' then reason = 'setting'
  elseif tonumber(st[4]) - tonumber(st[5]) <= 0 then reason = 'fast_time' end
end
if reason then
  local out = {0, reason}
  local all = redis.call('HGETALL', acc)
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
end
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 'duplicate'} end
local inflight = redis.call('HINCRBY', acc, 'in_flight', 1)
local reserved = redis.call('HINCRBY', acc, 'reserved_ms', tonumber(ARGV[3]))
redis.call('HSET', KEYS[3], 'state', 'flight', 'mode', ARGV[2], 'reserved_ms', ARGV[3],
           'owner', ARGV[5], 'at', ARGV[6])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[1])
return {1, inflight, reserved}
"""

#: KEYS: account hash, leases zset, task hash.
#: ARGV: task_id, final state, expected lver ('' = no check), done ttl seconds,
#:       charged ms (kept on the task for audits), then field/value pairs
#:       computed by router.ledger.
#: Returns {1, lver} on success, {0, state} if the task is not in flight (an
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
if #ARGV > 5 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('HINCRBY', KEYS[1], 'lver', 1)
end
redis.call('HSET', KEYS[3], 'state', ARGV[2], 'charged_ms', ARGV[5])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
redis.call('ZREM', KEYS[2], ARGV[1])
return {1, redis.call('HGET', KEYS[1], 'lver')}
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
return 1
"""

#: KEYS: account hash, leases zset, then the task hashes of the candidates.
#: ARGV: now, done ttl, then the candidate task ids (same order as their KEYS).
#: Releases every candidate whose lease is still at or before ``now`` and that is
#: still in flight: the room and the reserved fast time come back, nothing is
#: charged (L1). Returns the released task ids.
EXPIRE = """
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = KEYS[i]
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) <= now then
    local t = redis.call('HMGET', key, 'state', 'reserved_ms')
    if t[1] == 'flight' then
      redis.call('HINCRBY', KEYS[1], 'in_flight', -1)
      redis.call('HINCRBY', KEYS[1], 'reserved_ms', 0 - tonumber(t[2]))
      redis.call('HSET', key, 'state', 'expired')
      redis.call('EXPIRE', key, tonumber(ARGV[2]))
      out[#out + 1] = id
    end
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
"""
