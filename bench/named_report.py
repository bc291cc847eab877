#!/usr/bin/env python3
"""A million-row named report from PostgreSQL against the same rows uploaded.

    python3 bench/named_report.py [ROWS] [RUNS]      (defaults: 1000000 rows, 3 runs)

Seeds `reportd_bench_warehouse` on the PostgreSQL of scripts/services.sh (a
10-column `sales` table made with generate_series), starts an embedded
`reportd serve` (target/release/reportd: cargo build --release) with a
`million` report over it, and for each run:
  - named: POST {"report": "million"}, poll /status until done;
  - upload: the same rows (exported by PostgreSQL as NDJSON, gzip) POSTed to
    /generate, timed from the first byte sent until done.
Prints the median submit-to-done time of each, their ratio, and the peak RSS
of the reportd process during each kind (sampled every 10 ms from /proc).
"""
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("REPORTD_BIN", os.path.join(ROOT, "target/release/reportd"))
PG = os.environ.get("REPORTD_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "reportd_bench_warehouse"
COLUMNS = "id, day, at, region, amount, qty, ratio, paid, note, id * 2 AS twice"


def psql(db, sql, out=None):
    subprocess.run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, stdout=out)


def seed():
    psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {DB}")
    psql(DB, f"""
CREATE TABLE sales (id bigint PRIMARY KEY, day date, at timestamptz, region text, amount numeric(12,2),
                    qty int4, ratio float8, paid boolean, note text);
INSERT INTO sales SELECT g, date '2026-01-01' + (g % 120), timestamptz '2026-01-01 00:00:00+00' + g * interval '31.25 seconds',
       (ARRAY['North','South','East','West'])[1 + g % 4], (g % 1000) * 1.25, g % 50,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g / 8.0 END, g % 3 = 0,
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'nota ' || g || ' — ção' END
FROM generate_series(1, {ROWS}) g;
ANALYZE sales;""")


def ndjson_gzip(path):
    """The same rows as an upload: a header line, then one JSON array per row."""
    header = {"format": "xlsx", "title": "A million rows", "columns": [
        {"name": "id", "type": "integer"}, {"name": "day", "type": "date"}, {"name": "at", "type": "datetime"},
        {"name": "region", "type": "text"}, {"name": "amount", "type": "number"}, {"name": "qty", "type": "integer"},
        {"name": "ratio", "type": "number"}, {"name": "paid", "type": "boolean"}, {"name": "note", "type": "text"},
        {"name": "twice", "type": "integer"}]}
    raw = path + ".raw"
    with open(raw, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        f.flush()
        psql(DB, "COPY (SELECT json_build_array(id, day, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                 "region, amount, qty, ratio, paid, note, id * 2) FROM sales ORDER BY id) TO STDOUT", out=f)
    with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    os.remove(raw)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Peak:
    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.01)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak / 1024


def request(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def wait_done(base, job):
    while True:
        status = request(f"{base}/status/{job}")
        if status["status"] in ("done", "error"):
            assert status["status"] == "done", status
            return status
        time.sleep(0.05)


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} is missing: cargo build --release")
    print(f"seeding {ROWS} rows in {DB}...", file=sys.stderr)
    seed()
    work = tempfile.mkdtemp(prefix="reportd-named-bench-")
    reports = os.path.join(work, "reports")
    os.makedirs(reports)
    with open(os.path.join(reports, "million.toml"), "w") as f:
        f.write(f'name = "million"\ntitle = "A million rows"\nsource = "warehouse"\ntenants = ["*"]\n'
                f'max_rows = {ROWS}\ntimeout = "5m"\nsql = "SELECT {COLUMNS} FROM sales ORDER BY id"\n')
    upload = os.path.join(work, "rows.ndjson.gz")
    ndjson_gzip(upload)
    with open(upload, "rb") as f:
        upload_body = f.read()
    env = dict(os.environ, REPORTD__DATA_DIR=os.path.join(work, "data"), REPORTD__REPORTS__DIR=reports,
               REPORTD__SOURCES__WAREHOUSE__URL=f"{PG}/{DB}", REPORTD__HTTP__PORT="18099", RUST_LOG="warn")
    env = {k: v for k, v in env.items() if not k.startswith("REPORTD__") or k in (
        "REPORTD__DATA_DIR", "REPORTD__REPORTS__DIR", "REPORTD__SOURCES__WAREHOUSE__URL", "REPORTD__HTTP__PORT")}
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
    base = "http://127.0.0.1:18099"
    try:
        for _ in range(300):
            try:
                request(f"{base}/ready")
                break
            except Exception:
                time.sleep(0.1)
        times = {"named": [], "upload": []}
        peaks = {"named": 0.0, "upload": 0.0}
        for _ in range(RUNS):
            for kind in ("named", "upload"):
                peak = Peak(proc.pid)
                started = time.monotonic()
                if kind == "named":
                    accepted = request(f"{base}/generate", json.dumps({"report": "million"}).encode(),
                                       {"Content-Type": "application/json"})
                else:
                    accepted = request(f"{base}/generate", upload_body,
                                       {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
                status = wait_done(base, accepted["id"])
                times[kind].append(time.monotonic() - started)
                peaks[kind] = max(peaks[kind], peak.stop())
                assert status["rows"] == ROWS, status
        named, up = statistics.median(times["named"]), statistics.median(times["upload"])
        print(f"rows={ROWS} runs={RUNS}")
        print(f"named report (PostgreSQL -> XLSX): median {named:.2f} s, peak RSS of reportd serve {peaks['named']:.1f} MB")
        print(f"same rows uploaded (NDJSON gzip, {len(upload_body) / 1e6:.1f} MB): median {up:.2f} s, peak RSS {peaks['upload']:.1f} MB")
        print(f"named / upload: {named / up:.2f}x")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
