#!/usr/bin/env python3
"""Throughput with a worker killed mid-way, and whether every job still finished
exactly once: reportd's production stack (bench/stack.sh) and, with --peer, the
Node BullMQ peer (bench/peer.sh), 1 API + 2 workers each, one after the other.

usage: bench/kill_worker.py [--jobs 3000] [--rows 100] [--conns 32] [--format xlsx]
                            [--kill-at 0.3] [--peer] [--no-reportd]

For each service: start it, run ../shared/bench/throughput_fast.py against it,
SIGKILL worker 1 (no drain, no leave) once --kill-at of the jobs are done, let
the client finish, and check:
  reportd: from PostgreSQL, every submitted job is `done` with `renders` = 1
           (the worker records a render with the job's outcome; a second one
           would count 2) and a stored report;
  peer:    every job finished (the client says so) and the `done <id>` lines
           its workers logged, where a job completed twice would show twice.
Prints the client's line and one JSON summary per service."""
import argparse, json, os, re, signal, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(ROOT, "..", "shared", "bench", "throughput_fast.py")
STACK = os.path.join(ROOT, "target", "bench-stack")
PEER = os.path.join(ROOT, "target", "bench-peer")


def psql(sql, db):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-AtF,", "-c", sql],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def wait_until(what, cond, deadline_s):
    deadline = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"kill_worker.py: {what} did not happen within {deadline_s} s")
        time.sleep(0.05)


def run_client(url, args):
    return subprocess.Popen([sys.executable, CLIENT, url, str(args.jobs), str(args.rows), str(args.conns), args.format],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def finish_client(client):
    out, _ = client.communicate(timeout=1200)
    line = next((l for l in out.splitlines() if "jobs=" in l), out.strip()[-400:])
    print(line, flush=True)
    fields = dict(m.groups() for m in re.finditer(r"(\w+)=([^\s]+)", line))
    return line, fields


def reportd(args):
    url = subprocess.run(["bench/stack.sh", "up", "1", "2"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()[0]
    db = open(os.path.join(STACK, "database")).read().strip()
    pids = {name: int(pid) for name, pid, _ in (l.split() for l in open(os.path.join(STACK, "pids")))}
    try:
        client = run_client(url, args)
        kill_at = int(args.jobs * args.kill_at)
        wait_until(f"{kill_at} jobs done",
                   lambda: int(psql("SELECT count(*) FROM jobs WHERE status = 'done'", db) or 0) >= kill_at, 600)
        os.kill(pids["worker-1"], signal.SIGKILL)
        killed_at = int(psql("SELECT count(*) FROM jobs WHERE status = 'done'", db))
        print(f"reportd: SIGKILL worker-1 with {killed_at} of {args.jobs} jobs done", flush=True)
        line, fields = finish_client(client)
        row = psql("SELECT count(*), count(*) FILTER (WHERE status = 'done'),"
                   " count(*) FILTER (WHERE renders = 1 AND report_key IS NOT NULL),"
                   " coalesce(sum(renders), 0), coalesce(max(renders), 0),"
                   " count(*) FILTER (WHERE attempts > 1) FROM jobs", db)
        total, done, once, renders, max_renders, retried = map(int, row.split(","))
        summary = {"service": "reportd", "format": args.format, "jobs": args.jobs, "killed_at_done": killed_at,
                   "jobs_per_s": float(fields.get("jobs_per_s", "nan")), "jobs_in_db": total, "done": done,
                   "rendered_once": once, "renders": renders, "max_renders": max_renders,
                   "attempts_gt_1": retried,
                   "exactly_once": total == args.jobs and done == total and once == total and renders == total}
        print(json.dumps(summary), flush=True)
        return summary
    finally:
        subprocess.run(["bench/stack.sh", "down"], cwd=ROOT, check=False)


def peer_completions():
    """Job ids in the `done <id>` lines the peer's workers logged (it keeps no count of its own)."""
    ids = []
    for name in os.listdir(PEER):
        if name.startswith("worker-") and name.endswith(".log"):
            with open(os.path.join(PEER, name)) as f:
                ids += [l.split()[1] for l in f if l.startswith("done ")]
    return ids


def peer(args):
    url = subprocess.run(["bench/peer.sh", "up", "2"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()[-1]
    pids = [int(l) for l in open(os.path.join(PEER, "pids"))]
    try:
        client = run_client(url, args)
        kill_at = int(args.jobs * args.kill_at)
        wait_until(f"{kill_at} peer jobs done", lambda: len(peer_completions()) >= kill_at, 600)
        os.kill(pids[2], signal.SIGKILL)  # pids: server, worker-0, worker-1
        killed_at = len(peer_completions())
        print(f"peer: SIGKILL worker-1 with {killed_at} of {args.jobs} jobs done", flush=True)
        line, fields = finish_client(client)
        ids = peer_completions()
        summary = {"service": "peer", "format": args.format, "jobs": args.jobs, "killed_at_done": killed_at,
                   "jobs_per_s": float(fields.get("jobs_per_s", "nan")),
                   "completions_logged": len(ids), "distinct_jobs_completed": len(set(ids)),
                   "completed_twice": len(ids) - len(set(ids))}
        print(json.dumps(summary), flush=True)
        return summary
    finally:
        subprocess.run(["bench/peer.sh", "down"], cwd=ROOT, check=False)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=3000)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--format", default="xlsx", choices=["xlsx", "pdf"])
    p.add_argument("--kill-at", type=float, default=0.3, help="fraction of the jobs done when worker 1 is killed")
    p.add_argument("--peer", action="store_true", help="also run the Node BullMQ peer the same way")
    p.add_argument("--no-reportd", action="store_true")
    args = p.parse_args()
    results = []
    if not args.no_reportd:
        results.append(reportd(args))
    if args.peer:
        results.append(peer(args))
    if len(results) == 2 and results[1]["jobs_per_s"] > 0:
        print(f"ratio reportd/peer: {results[0]['jobs_per_s'] / results[1]['jobs_per_s']:.2f}x")
    if not args.no_reportd and not results[0]["exactly_once"]:
        sys.exit("kill_worker.py: reportd did not finish every job exactly once")


if __name__ == "__main__":
    main()
