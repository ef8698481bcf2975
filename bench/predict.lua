-- wrk script for bench/http_bench.sh: every request POSTs one 64-float
-- digits row (the first row of tests/data/digits.csv) to the predict
-- endpoint over keep-alive.  No response() callback: wrk counts non-2xx
-- answers itself, and a Lua callback per response would slow the client.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}'
