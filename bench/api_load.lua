-- wrk script for bench/api_load.py: no per-request hook (those slow wrk down), only a summary
-- at the end as one machine-readable line. Latencies are in microseconds; errors.status counts
-- responses with a status >= 400 (wrk's "Non-2xx or 3xx responses").
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"errors_status\":%d,\"errors_connect\":%d,\"errors_read\":%d," ..
    "\"errors_write\":%d,\"errors_timeout\":%d," ..
    "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
    summary.requests, summary.duration, summary.bytes,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
