-- wrk script for bench/load_test.sh: every request POSTs one 64-float
-- digits row to the predict endpoint over keep-alive, and at the end wrk
-- prints one machine-readable line with its own counts:
--   WRK_JSON {"requests":N,"duration_us":..,"connect":..,"read":..,"write":..,
--             "timeout":..,"non_2xx":..,"p50_us":..,"p99_us":..,"max_us":..}
-- (errors.status is wrk's count of responses outside 2xx/3xx).  No
-- response() callback: a Lua call per response would slow the client.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}'

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
