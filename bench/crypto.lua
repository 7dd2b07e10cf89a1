-- wrk script of bench/crypto.sh: one POST with a JSON body and a token, all from the
-- environment (BENCH_PATH, BENCH_BODY, BENCH_TOKEN). Counts every answer outside 2xx, which
-- wrk alone does not (it counts only >= 400), and prints one BENCHRESULT line.

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d non2xx=%d err_connect=%d err_read=%d " ..
    "err_write=%d err_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
