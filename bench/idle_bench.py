#!/usr/bin/python3
"""bench/idle_bench.py - the daemon at rest: start-up time to the first 200
from /readyz on an empty database, resident memory (VmRSS) once up, and
again after 100 small models (4-8-2) were trained a little (one epoch on
8 rows each) and each served one prediction, so all 100 sit in the
prediction cache (server/jobs/cache.c loads a version on its first
prediction).  Start-up is the median of STARTS fresh starts.

  usage: bench/idle_bench.py [BUILD_DIR]      (default: build)
  env:   STARTS (5), MODELS (100)
Prints JSON lines:
  {"bench":"startup","runs":N,"ms_to_readyz":M,"all_ms":[...],"target_ms":50}
  {"bench":"idle_rss","rss_kib_after_start":A,"rss_kib_after_models":B,"models":100,"target_kib":20480}
Standard library only; the daemon listens on 127.0.0.1.
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def start(binary, db, port):
    """Starts the daemon; returns (process, ms from exec to a 200 /readyz)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--db", db,
                          "--workers", "1"], stderr=subprocess.DEVNULL)
    while time.perf_counter() - t0 < 10:
        if p.poll() is not None:
            sys.exit(f"idle_bench: the daemon exited {p.returncode} at start-up")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return p, (time.perf_counter() - t0) * 1000.0
        except OSError:
            pass
        time.sleep(0.0005)
    p.kill()
    sys.exit("idle_bench: no 200 from /readyz within 10 s")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def call(port, method, path, body=None, ctype="application/json"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = body.encode() if isinstance(body, str) else body
    c.request(method, path, body=data, headers={"Content-Type": ctype} if data else {})
    r = c.getresponse()
    out = r.read()
    if r.status // 100 != 2:
        sys.exit(f"idle_bench: {method} {path} -> {r.status}: {out[:300]!r}")
    return json.loads(out) if out else None


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    binary = os.path.join(build, "backpropd")
    starts = int(os.environ.get("STARTS", "5"))
    models = int(os.environ.get("MODELS", "100"))
    with tempfile.TemporaryDirectory(prefix="backpropd-idle.") as tmp:
        times = []
        for i in range(starts):
            p, ms = start(binary, os.path.join(tmp, f"empty{i}.db"), free_port())
            times.append(ms)
            stop(p)
        print(json.dumps({"bench": "startup", "runs": starts,
                          "ms_to_readyz": round(statistics.median(times), 2),
                          "all_ms": [round(t, 2) for t in times], "target_ms": 50}))

        port = free_port()
        p, _ = start(binary, os.path.join(tmp, "models.db"), port)
        try:
            time.sleep(0.5)  # let start-up allocations settle
            rss0 = rss_kib(p.pid)
            csv = "a,b,c,d,y\n" + "".join(f"{i % 3},{i % 5},{i % 2},{i},{i % 2}\n" for i in range(8))
            call(port, "POST", "/v1/datasets?name=tiny&label=y", csv, "text/csv")
            jobs = []
            for m in range(models):
                call(port, "POST", "/v1/models", json.dumps({
                    "name": f"m{m}", "inputs": 4, "seed": m + 1, "loss": "cross_entropy",
                    "layers": [{"units": 8, "activation": "relu"},
                               {"units": 2, "activation": "softmax"}]}))
                jobs.append(call(port, "POST", "/v1/jobs", json.dumps({
                    "model": f"m{m}", "dataset": "tiny", "epochs": 1, "batch_size": 8,
                    "seed": 1}))["id"])
            deadline = time.time() + 120
            for j in jobs:
                while True:
                    st = call(port, "GET", f"/v1/jobs/{j}")["status"]
                    if st == "succeeded":
                        break
                    if st in ("failed", "cancelled") or time.time() > deadline:
                        sys.exit(f"idle_bench: job {j} is {st}")
                    time.sleep(0.02)
            for m in range(models):
                out = call(port, "POST", f"/v1/models/m{m}/predict", '{"inputs":[[1,2,0,3]]}')
                if "outputs" not in out:
                    sys.exit(f"idle_bench: predict on m{m} gave no outputs: {out}")
            time.sleep(0.5)
            rss1 = rss_kib(p.pid)
        finally:
            stop(p)
        print(json.dumps({"bench": "idle_rss", "rss_kib_after_start": rss0,
                          "rss_kib_after_models": rss1, "models": models,
                          "target_kib": 20 * 1024}))


if __name__ == "__main__":
    main()
