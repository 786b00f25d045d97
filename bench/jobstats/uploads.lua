-- wrk script of bench/jobstats/uploads.py: TrailblazingTurtle-style uploads, each with its own job id.
--   wrk -t4 -c4 -d6s -s uploads.lua http://127.0.0.1:8767/api/jobscripts/ -- FIRST TOKEN SCRIPT_JSON 4
-- Thread i (0-based) of n sends ids FIRST+i, FIRST+i+n, ...; an answer other than 201 is counted.
-- done() prints one JSON line that uploads.py reads. Bounded by the duration, not a count: a thread
-- that stopped early would leave its next connection (gunicorn closes each one) open and idle,
-- holding a sync worker until its timeout.

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   first, token, script, stride = tonumber(args[1]), args[2], args[3], tonumber(args[4])
   sent, bad = 0, 0
   headers = { ["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json" }
end

function request()
   local id = first + index + sent * stride
   sent = sent + 1
   return wrk.format("POST", nil, headers, '{"id_job":' .. id .. ',"submit_script":' .. script .. '}')
end

function response(status, headers, body)
   if status ~= 201 then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local bad_total = 0
   for _, thread in ipairs(threads) do
      bad_total = bad_total + thread:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"not_201":%d,'
         .. '"errors":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      bad_total, e.connect + e.read + e.write + e.timeout))
end
