#!/usr/bin/env python3
"""Scale-out in one run: small-job throughput and CPU per job of the production
stack (bench/stack.sh) with several api x worker layouts on one consumer group.

usage: bench/scaleout.py [--layouts 1x1,1x2,1x4,2x2] [--jobs 2000] [--rows 100]
                         [--conc 32] [--fmt xlsx] [--svg FILE] [--json FILE]

For each layout APIxWORKERS: `bench/stack.sh up API WORKERS` (a fresh database,
topic, group and bucket prefix), then one throughput_fast.py client per API
process (jobs and connections split evenly, started together), with
bench/breakdown.py's counters read around them: CPU per job of every process,
PostgreSQL commits and rows, object-store requests, Kafka messages. jobs/s is
all jobs over the slowest client's time from its first submit to its last job
done. Prints a Markdown table; --svg writes a plot of jobs/s and CPU per job,
--json the raw figures."""
import argparse, json, os, re, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import breakdown  # noqa: E402

CLIENT = os.environ.get("THROUGHPUT_FAST", "../shared/bench/throughput_fast.py")


def field(line, name):
    m = re.search(name + r"=([0-9.]+)", line)
    return float(m.group(1)) if m else 0.0


def run_layout(apis, workers, args):
    urls = subprocess.run(["bench/stack.sh", "up", str(apis), str(workers)], check=True,
                          capture_output=True, text=True).stdout.split()
    try:
        with open(f"{breakdown.RUN}/database") as f:
            db = f.read().strip()
        groups = breakdown.process_groups()
        before = (breakdown.cpu(groups), breakdown.pg_stats(db), breakdown.reportd_metrics())
        per = args.jobs // len(urls)
        clients = [subprocess.Popen(["python3", CLIENT, url, str(per), str(args.rows),
                                     str(max(1, args.conc // len(urls))), args.fmt],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for url in urls]
        outputs = [c.communicate() for c in clients]
        after = (breakdown.cpu(breakdown.process_groups()), breakdown.pg_stats(db), breakdown.reportd_metrics())
    finally:
        subprocess.run(["bench/stack.sh", "down"], check=False)
    lines = [next((l for l in out.splitlines() if l.startswith("jobs=")), "") for out, _ in outputs]
    for line, (_, err) in zip(lines, outputs):
        if not line:
            sys.exit(f"a client printed no result: {err[-2000:]}")
    jobs = sum(int(re.match(r"jobs=(\d+)/", l).group(1)) for l in lines)
    unfinished = sum(field(l, "unfinished") + field(l, "errors") for l in lines)
    wall = max(field(l, "all_done_s") for l in lines)
    cpu = breakdown.delta(before[0], after[0])
    pg = breakdown.delta(before[1], after[1])
    metrics = breakdown.delta(before[2], after[2])
    reportd = {k: v for k, v in cpu.items() if k.startswith(("api", "worker"))}
    return {
        "layout": f"{apis}x{workers}", "apis": apis, "workers": workers, "jobs": jobs,
        "unfinished": int(unfinished), "jobs_per_s": round(jobs / wall, 1),
        "submit_p99_ms": max(field(l, "submit_p99_ms") for l in lines),
        "cpu_ms_per_job_total": round(sum(cpu.values()) * 1000 / jobs, 2),
        "cpu_ms_per_job_reportd": round(sum(reportd.values()) * 1000 / jobs, 2),
        "cpu_ms_per_job": {k: round(v * 1000 / jobs, 2) for k, v in sorted(cpu.items())},
        "pg_commits_per_job": round(pg.get("commits", 0) / jobs, 2),
        "pg_rows_written_per_job": round((pg.get("rows_inserted", 0) + pg.get("rows_updated", 0)
                                          + pg.get("rows_deleted", 0)) / jobs, 2),
        "storage_requests_per_job": round(sum(v for k, v in metrics.items()
                                              if k.startswith("reportd_storage_requests_total")) / jobs, 2),
        "kafka_messages_per_job": round(sum(v for k, v in metrics.items()
                                            if k.startswith("reportd_outbox_published_total")) / jobs, 2),
        "clients": lines,
    }


def markdown(rows):
    out = ["| api x workers | jobs/s | submit p99 | CPU ms/job (all) | CPU ms/job (reportd) | "
           "PG commits/job | PG rows written/job | S3 requests/job | Kafka msgs/job | lost |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['apis']} x {r['workers']} | {r['jobs_per_s']} | {r['submit_p99_ms']} ms | "
                   f"{r['cpu_ms_per_job_total']} | {r['cpu_ms_per_job_reportd']} | {r['pg_commits_per_job']} | "
                   f"{r['pg_rows_written_per_job']} | {r['storage_requests_per_job']} | "
                   f"{r['kafka_messages_per_job']} | {r['unfinished']} |")
    return "\n".join(out)


def svg(rows, title):
    """Bars: jobs/s per layout; dots: CPU ms per job (right axis). No plotting library needed."""
    w, h, left, right, top, bottom = 640, 360, 60, 60, 40, 50
    pw, ph = w - left - right, h - top - bottom
    top_rate = max(r["jobs_per_s"] for r in rows) * 1.6  # bars below the CPU line
    top_cpu = max(r["cpu_ms_per_job_total"] for r in rows) * 1.15
    slot = pw / len(rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
             f'<line x1="{left + pw}" y1="{top}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
             f'<text x="15" y="{top + ph / 2}" transform="rotate(-90 15 {top + ph / 2})" text-anchor="middle" fill="#3566a8">jobs/s</text>',
             f'<text x="{w - 12}" y="{top + ph / 2}" transform="rotate(90 {w - 12} {top + ph / 2})" text-anchor="middle" fill="#c0392b">CPU ms per job (all processes)</text>']
    for i in range(5):
        y = top + ph - ph * i / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{top_rate * i / 4:.0f}</text>')
        parts.append(f'<text x="{left + pw + 6}" y="{y + 4}">{top_cpu * i / 4:.1f}</text>')
    points = []
    for i, r in enumerate(rows):
        x = left + slot * i + slot * 0.2
        bh = ph * r["jobs_per_s"] / top_rate
        parts.append(f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{slot * 0.6:.1f}" height="{bh:.1f}" fill="#3566a8"/>')
        parts.append(f'<text x="{x + slot * 0.3:.1f}" y="{top + ph - bh + 16:.1f}" text-anchor="middle" fill="white">{r["jobs_per_s"]:.0f}</text>')
        parts.append(f'<text x="{x + slot * 0.3:.1f}" y="{top + ph + 18}" text-anchor="middle">{r["apis"]} api x {r["workers"]} workers</text>')
        cy = top + ph - ph * r["cpu_ms_per_job_total"] / top_cpu
        points.append(f"{x + slot * 0.3:.1f},{cy:.1f}")
        parts.append(f'<circle cx="{x + slot * 0.3:.1f}" cy="{cy:.1f}" r="4" fill="#c0392b"/>')
        parts.append(f'<text x="{x + slot * 0.3 + 8:.1f}" y="{cy - 6:.1f}" fill="#c0392b">{r["cpu_ms_per_job_total"]:.1f}</text>')
    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#c0392b"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layouts", default="1x1,1x2,1x4,2x2")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--conc", type=int, default=32)
    p.add_argument("--fmt", default="xlsx")
    p.add_argument("--svg")
    p.add_argument("--json")
    args = p.parse_args()
    rows = []
    for layout in args.layouts.split(","):
        apis, workers = map(int, layout.split("x"))
        started = time.time()
        r = run_layout(apis, workers, args)
        print(f"{layout}: {r['jobs_per_s']} jobs/s, {r['cpu_ms_per_job_total']} CPU ms/job "
              f"({time.time() - started:.0f} s)", file=sys.stderr)
        rows.append(r)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(rows, f"reportd production, {args.jobs} {args.fmt} jobs of {args.rows} rows, one machine (2 cores)"))


if __name__ == "__main__":
    main()
