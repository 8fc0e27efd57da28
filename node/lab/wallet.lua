-- The wrk script of the wallet benchmark (node/lab/wallet_wrk.py): each
-- request is a single POST /tx carrying the next pre-built body of a file,
-- one line per transaction, "<tx id hex> <JSON body>".
--
--   wrk -t1 -c16 -d12s --latency -s wallet.lua URL -- BODIES RATE WRAP TRACK
--
-- RATE: requests/s of this process (0: as fast as the server answers).
-- WRAP: 1 starts the file over when it runs out (a bare handler); 0 stops.
-- TRACK: 1 keeps (id, sent, answered) of every 202, matched by the tx id
-- of its answer; times are CLOCK_MONOTONIC seconds (Python's perf_counter).
-- done() prints one JSON object on stdout.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } wallet_timespec;
int clock_gettime(int clock_id, wallet_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("wallet_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- ------------------------------------------------------------ main state

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

-- ------------------------------------------------------------ each thread

local ids, requests, count = {}, {}, 0
local next_index, wrap, track = 1, false, false
local rate, slots, first_slot, lag = 0, 0, nil, 0
local sent_at = {}
issued, exhausted, acks, statuses, codes = 0, false, {}, {}, {}
first_sent, last_answer, max_lag = 0, 0, 0
local idle_request

local function paced_delay()
  local t = now()
  if first_slot == nil then
    first_slot = t
  end
  local due = first_slot + slots / rate
  slots = slots + 1
  if due <= t then
    if t - due > lag then
      lag = t - due
      max_lag = lag
    end
    return 0
  end
  return math.floor((due - t) * 1000 + 0.5)
end

function init(args)
  rate = tonumber(args[2]) or 0
  wrap = args[3] == "1"
  track = args[4] == "1"
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    local space = line:find(" ", 1, true)
    count = count + 1
    ids[count] = line:sub(1, space - 1)
    requests[count] = wrk.format("POST", "/tx", headers, line:sub(space + 1))
  end
  idle_request = wrk.format("GET", "/health", {})
  if rate > 0 then
    delay = paced_delay
  end
end

function request()
  local i = next_index
  if i > count then
    if not wrap or count == 0 then
      exhausted = true
      wrk.thread:stop()
      return idle_request
    end
    i = 1
  end
  next_index = i + 1
  issued = issued + 1
  local t = now()
  if first_sent == 0 then
    first_sent = t
  end
  if track then
    sent_at[ids[i]] = t
  end
  return requests[i]
end

function response(status, headers, body)
  local t = now()
  if exhausted and status == 200 then
    return -- the GET /health sent when the file ran out: not a transaction
  end
  last_answer = t
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    if track then
      local id = body:match('"tx_id"%s*:%s*"(%x+)"')
      local sent = id and sent_at[id]
      if sent then
        acks[#acks + 1] = string.format("%s %.6f %.6f", id, sent, t)
        sent_at[id] = nil
      end
    end
  else
    local code = body:match('"code"%s*:%s*"([%w_]+)"') or "-"
    local key = status .. " " .. code
    codes[key] = (codes[key] or 0) + 1
  end
end

-- ------------------------------------------------------------ the report

local function counts_json(counts)
  local parts = {}
  for key, value in pairs(counts) do
    parts[#parts + 1] = string.format('"%s": %d', tostring(key), value)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function add(into, counts)
  for key, value in pairs(counts) do
    into[key] = (into[key] or 0) + value
  end
end

function done(summary, latency, requests_stats)
  local all_statuses, all_codes, all_acks = {}, {}, {}
  local all_issued, all_exhausted, first, last, worst_lag = 0, false, nil, 0, 0
  for _, thread in ipairs(threads) do
    add(all_statuses, thread:get("statuses"))
    add(all_codes, thread:get("codes"))
    for _, ack in ipairs(thread:get("acks")) do
      all_acks[#all_acks + 1] = '"' .. ack .. '"'
    end
    all_issued = all_issued + thread:get("issued")
    all_exhausted = all_exhausted or thread:get("exhausted")
    local sent = thread:get("first_sent")
    if sent > 0 and (first == nil or sent < first) then
      first = sent
    end
    last = math.max(last, thread:get("last_answer"))
    worst_lag = math.max(worst_lag, thread:get("max_lag"))
  end
  local percentiles = {}
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    percentiles[#percentiles + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  local errors = summary.errors
  io.write(
    string.format(
      '{"duration_us": %d, "requests": %d, "issued": %d, "exhausted": %s,'
        .. ' "first_sent": %.6f, "last_answer": %.6f, "lag_s": %.6f,'
        .. ' "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d},'
        .. ' "latency_us": {%s, "max": %d, "mean": %.1f},'
        .. ' "statuses": %s, "codes": %s, "acks": [%s]}\n',
      summary.duration,
      summary.requests,
      all_issued,
      tostring(all_exhausted),
      first or 0,
      last,
      worst_lag,
      errors.connect,
      errors.read,
      errors.write,
      errors.status,
      errors.timeout,
      table.concat(percentiles, ", "),
      latency.max,
      latency.mean,
      counts_json(all_statuses),
      counts_json(all_codes),
      table.concat(all_acks, ",")
    )
  )
end
