"""The token bucket in Redis, written once: both Lua scripts (``ratelimit.BUCKET_SCRIPT``, one token per check,
and ``leases.LEASE_SCRIPT``, several at a time) read and store the bucket through these two pieces, so they share
its layout (a hash of ``tokens`` and ``ts``), its clock (Redis's own ``TIME``) and its refill.

``BUCKET_LOAD`` leaves ``now`` (ms), ``capacity``, ``window_ms``, ``rate`` (tokens per ms), and ``tokens``
refilled up to ``now`` plus ``extra`` tokens, which the script defines before it (tokens given back). ARGV[1] is
the capacity, ARGV[2] the window in ms. ``BUCKET_STORE`` writes ``tokens`` back and lets an idle bucket expire
after two windows (by then it is full again, which is what a missing bucket means).
"""

from __future__ import annotations

BUCKET_LOAD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local rate = capacity / window_ms
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate + extra)
"""

BUCKET_STORE = """
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], window_ms * 2)
"""
