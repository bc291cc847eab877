#!/usr/bin/env python3
"""Where a job's cost goes: runs a load command against the production stack
(bench/stack.sh) and prints, per job, the CPU each process spent and the
requests each backend served.

usage: bench/breakdown.py [--peer] -- COMMAND...
  e.g. bench/breakdown.py -- python3 ../shared/bench/throughput_fast.py http://127.0.0.1:18080 3000 100 32 xlsx
  --peer: the Node peer of bench/peer.sh instead (its processes and Redis only)

Before and after COMMAND it reads:
  CPU (utime+stime, children included) of the reportd processes in
  target/bench-stack/pids, of PostgreSQL (the postmaster on :5432 and its
  backends), Redis (:6379), tansu (:9092) and Garage (:3900), from /proc;
  PostgreSQL: pg_stat_database of the bench database (commits, rows
  inserted/updated/deleted/returned) and the rows each table's sequential
  scans and each index's scans read; Redis: INFO commandstats;
  reportd's /metrics: object-store requests by kind, outbox messages
  published, Kafka offset commits, status write transactions, HTTP requests.
The job count is taken from the command's `jobs=N/` output."""
import json, os, re, subprocess, sys, time, urllib.request

HZ = os.sysconf("SC_CLK_TCK")
RUN = os.environ.get("REPORTD_BENCH_DIR", "target/bench-stack")


def listener_pid(port):
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.append(int(d))
            except OSError:
                pass
    return kids


def cpu_seconds(pid, with_children=True):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / HZ


def process_groups():
    groups = {}
    with open(f"{RUN}/pids") as f:
        for line in f:
            name, pid, _ = line.split()
            groups[name] = [int(pid)]
    for name, port in [("postgres", 5432), ("redis", 6379), ("tansu", 9092), ("garage", 3900)]:
        pid = listener_pid(port)
        if pid:
            groups[name] = [pid] + (children(pid) if name == "postgres" else [])
    return groups


def peer_groups():
    """The peer's processes (target/bench-peer/pids: the API, then the workers) and Redis."""
    with open("target/bench-peer/pids") as f:
        pids = [int(line) for line in f if line.strip()]
    groups = {"peer-api": [pids[0]]}
    groups.update({f"peer-worker-{i}": [pid] for i, pid in enumerate(pids[1:])})
    pid = listener_pid(6379)
    if pid:
        groups["redis"] = [pid]
    return groups


def cpu(groups):
    return {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}


def psql(sql, db="postgres"):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-AtF,", "-c", sql],
                         capture_output=True, text=True)
    return out.stdout.strip()


def pg_scans(db):
    """Rows each table's sequential scans and each index's scans read: where
    rows_returned comes from."""
    stats = {}
    for line in psql("SELECT relname, seq_tup_read FROM pg_stat_user_tables", db).splitlines():
        name, rows = line.split(",")
        stats[f"seq:{name}"] = int(rows or 0)
    for line in psql("SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes", db).splitlines():
        name, rows = line.split(",")
        stats[f"idx:{name}"] = int(rows or 0)
    return stats


def pg_stats(db):
    row = psql(f"SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned, tup_fetched "
               f"FROM pg_stat_database WHERE datname = '{db}'")
    keys = ["commits", "rows_inserted", "rows_updated", "rows_deleted", "rows_returned", "rows_fetched"]
    return dict(zip(keys, map(int, row.split(",")))) if row else {}


def redis_stats():
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "INFO", "commandstats"], capture_output=True, text=True).stdout
    stats = {}
    for line in out.splitlines():
        m = re.match(r"cmdstat_(\w+):calls=(\d+)", line)
        if m:
            stats[m.group(1)] = int(m.group(2))
    return stats


METRICS = {
    "reportd_storage_requests_total": "op",
    "reportd_outbox_published_total": "topic",
    "reportd_kafka_commits_total": None,
    "reportd_status_batch_size_count": None,
    "reportd_http_requests_total": "route",
}


def reportd_metrics():
    totals = {}
    with open(f"{RUN}/pids") as f:
        ports = [line.split()[2] for line in f]
    for port in ports:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            for metric, label in METRICS.items():
                if line.startswith(metric + "{") or line.startswith(metric + " "):
                    value = float(line.rsplit(" ", 1)[1])
                    key = metric
                    if label:
                        m = re.search(label + r'="([^"]*)"', line)
                        key = f"{metric}{{{label}={m.group(1) if m else ''}}}"
                    totals[key] = totals.get(key, 0.0) + value
    return totals


def delta(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}


def main():
    if "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command = sys.argv[sys.argv.index("--") + 1:]
    if "--peer" in sys.argv[1:sys.argv.index("--")]:
        return peer(command)
    with open(f"{RUN}/database") as f:
        db = f.read().strip()
    groups = process_groups()
    before = (cpu(groups), pg_stats(db), redis_stats(), reportd_metrics(), time.time(), pg_scans(db))
    out = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr[-2000:])
    after = (cpu(process_groups()), pg_stats(db), redis_stats(), reportd_metrics(), time.time(), pg_scans(db))
    m = re.search(r"jobs=(\d+)/", out.stdout)
    jobs = int(m.group(1)) if m else 0
    if not jobs:
        sys.exit("no jobs=N/ in the command's output")
    wall = after[4] - before[4]
    cpu_d = delta(before[0], after[0])
    report = {"jobs": jobs, "wall_s": round(wall, 2),
              "cpu_ms_per_job": {k: round(v * 1000 / jobs, 3) for k, v in sorted(cpu_d.items())},
              "cpu_ms_per_job_total": round(sum(cpu_d.values()) * 1000 / jobs, 3),
              "postgres_per_job": {k: round(v / jobs, 2) for k, v in sorted(delta(before[1], after[1]).items())},
              "postgres_rows_read_per_job": {k: round(v / jobs, 2) for k, v in sorted(delta(before[5], after[5]).items()) if v},
              "redis_per_job": {k: round(v / jobs, 2) for k, v in sorted(delta(before[2], after[2]).items()) if v},
              "reportd_per_job": {k: round(v / jobs, 3) for k, v in sorted(delta(before[3], after[3]).items()) if v}}
    print(json.dumps(report, indent=1))


def peer(command):
    groups = peer_groups()
    before, redis_before, t0 = cpu(groups), redis_stats(), time.time()
    out = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr[-2000:])
    after, redis_after, wall = cpu(groups), redis_stats(), time.time() - t0
    m = re.search(r"jobs=(\d+)/", out.stdout)
    jobs = int(m.group(1)) if m else 0
    if not jobs:
        sys.exit("no jobs=N/ in the command's output")
    cpu_d = delta(before, after)
    print(json.dumps({"jobs": jobs, "wall_s": round(wall, 2),
                      "cpu_ms_per_job": {k: round(v * 1000 / jobs, 3) for k, v in sorted(cpu_d.items())},
                      "cpu_ms_per_job_total": round(sum(cpu_d.values()) * 1000 / jobs, 3),
                      "redis_per_job": {k: round(v / jobs, 2) for k, v in sorted(delta(redis_before, redis_after).items()) if v}},
                     indent=1))


if __name__ == "__main__":
    main()
