-- Replays pregenerated HTTP requests with wrk (bench/webhook_ingest.py writes them).
--
--   wrk -t2 -c16 -d20s -s bench/wrk_replay.lua http://127.0.0.1:PORT/ -- /tmp/dir/requests
--
-- Thread i reads its own slice, the file `<prefix>.<i>`: records of "<byte length>\n<raw HTTP
-- request>\n" (request line, headers, blank line, body), in the order they are to be sent. Each
-- request is sent once; only when a thread's slice runs out does it start over, and `repeats`
-- counts those resends (idempotent replays: the run's figures are then not clean).
-- done() prints one line "WRK_JSON {...}" with the totals, latency percentiles (microseconds),
-- per-thread counts and the HTTP statuses seen.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("thread_index", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local records = {}
local record_count = 0
local position = 0
-- Globals, read by done() through thread:get().
sent = 0
repeats = 0
statuses = {}

function init(args)
   local prefix = args[1]
   local file = assert(io.open(prefix .. "." .. thread_index, "rb"))
   local data = file:read("*a")
   file:close()
   local at = 1
   while at <= #data do
      local newline = data:find("\n", at, true)
      local length = tonumber(data:sub(at, newline - 1))
      records[#records + 1] = data:sub(newline + 1, newline + length)
      at = newline + length + 2
   end
   record_count = #records
   assert(record_count > 0, "no requests in " .. prefix .. "." .. thread_index)
end

function request()
   -- wrk calls request() once on thread 0 before the run to inspect it (that record is skipped).
   position = position + 1
   if position > record_count then
      position = 1
   end
   sent = sent + 1
   if sent > record_count then
      repeats = repeats + 1
   end
   return records[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local per_thread = {}
   for _, thread in ipairs(threads) do
      local counts = {}
      for status, count in pairs(thread:get("statuses")) do
         counts[#counts + 1] = string.format('"%d": %d', status, count)
      end
      per_thread[#per_thread + 1] = string.format(
         '{"index": %d, "sent": %d, "repeats": %d, "statuses": {%s}}',
         thread:get("thread_index"), thread:get("sent"), thread:get("repeats"), table.concat(counts, ", ")
      )
   end
   local errors = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p99": %d, "mean": %.1f, "max": %d}, "threads": [%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
      table.concat(per_thread, ", ")
   ))
end
