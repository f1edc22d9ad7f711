-- wrk script for scripts/bench-issuance: POSTs a JSON body built per request, counts
-- non-2xx answers itself, and prints one machine-readable RESULT line at the end.
--
-- Configured through the environment, so one script serves every system and operation:
--   BENCH_PATH      request path, e.g. /api/v1/certificates
--   BENCH_BODY      JSON template; "{{N}}" becomes a unique name per request (so every
--                   certificate has its own CN/SAN), "{{CSR}}" the next CSR of the pool
--   BENCH_TAG       prefix of {{N}}, distinct per run, so names never repeat within a run
--   BENCH_CSR_FILE  file with one CSR per line, each already a JSON string literal
--   BENCH_AUTH      optional Authorization header value ("Bearer ...")
--
-- Why count non-2xx here: wrk's own "Non-2xx or 3xx responses" line only counts status
-- >= 400, and a 3xx or 1xx would pass as success; a benchmark of failures is no benchmark.

local threads = {}

-- setup() runs once per thread in the main Lua state: number the threads so their
-- counters yield distinct names.
function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- Everything below runs in each thread's own Lua state.
local path     = os.getenv("BENCH_PATH") or "/"
local template = os.getenv("BENCH_BODY") or "{}"
local tag      = os.getenv("BENCH_TAG") or "run"
local auth     = os.getenv("BENCH_AUTH")
local csrs     = {}
local counter  = 0
non2xx         = 0    -- globals, so done() can read them with thread:get()
first_error    = ""

function init(args)
   local file = os.getenv("BENCH_CSR_FILE")
   if file and file ~= "" then
      for line in io.lines(file) do
         if line ~= "" then table.insert(csrs, line) end
      end
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
end

function request()
   counter = counter + 1
   local name = tag .. "-" .. tostring(tid or 0) .. "-" .. counter
   -- Function replacements: a "%" in a CSR or name must not be read as a gsub pattern.
   local body = template:gsub("{{N}}", function() return name end)
   if #csrs > 0 then
      local csr = csrs[((tid or 0) * 7919 + counter) % #csrs + 1]
      body = body:gsub("{{CSR}}", function() return csr end)
   end
   return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_error == "" then
         first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local bad, first = 0, ""
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      local e = t:get("first_error") or ""
      if first == "" then first = e end
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   -- One line, key=value, parsed by the harness; latency figures are in microseconds, rps
   -- counts 2xx answers only (requests counts every answer).
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.2f p50_us=%d p99_us=%d max_us=%d non2xx=%d " ..
      "connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
      summary.requests, secs, (summary.requests - bad) / secs,
      latency:percentile(50), latency:percentile(99), latency.max, bad,
      e.connect, e.read, e.write, e.timeout))
   if first ~= "" then
      io.write("FIRST_ERROR " .. first:gsub("[\r\n]+", " ") .. "\n")
   end
end
