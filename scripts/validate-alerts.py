#!/usr/bin/env python3
"""Checks a Prometheus rules file the way promtool does, and reportd's conventions.

    scripts/validate-alerts.py docker/prometheus/alerts.yml [--telemetry src/telemetry.rs]

- groups: a list of uniquely named groups, each with a list of rules; a rule is
  either an alert or a recording rule, with only the fields Prometheus knows;
- every expr parses as PromQL (promql-parser, a port of Prometheus' parser), every
  `for`/`interval` is a duration, label names are valid and templates balance;
- every alert has a severity label (critical, warning or info) and summary,
  description and runbook_url annotations; runbook_url is RUNBOOK.md#<anchor>;
- every metric an expr selects (histogram _bucket/_sum/_count mapped to the
  histogram) is a constant in src/telemetry.rs, except Prometheus' own `up`.

Prints the alerts and their runbook anchors; exit 1 with one line per problem.
promtool itself (check rules, test rules) runs from scripts/validate-deploy.sh
and tests/deploy.rs when scripts/validate-setup.sh has installed it.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

try:
    import promql_parser
except ImportError:  # pragma: no cover
    promql_parser = None

ROOT = Path(__file__).resolve().parent.parent
GROUP_KEYS = {"name", "interval", "rules", "limit", "query_offset", "labels"}
ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RECORD_KEYS = {"record", "expr", "labels"}
SEVERITIES = {"critical", "warning", "info"}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
RUNBOOK = re.compile(r"^(?:.*/)?RUNBOOK\.md#([a-z0-9][a-z0-9-]*)$")
DURATION = re.compile(r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")
ALLOWED_BUILTIN = {"up"}


def telemetry_metrics(path: Path) -> set[str]:
    return set(re.findall(r'pub(?:\(crate\))? const [A-Z0-9_]+: &str = "([a-z0-9_:]+)";', path.read_text()))


def selected_metrics(expr: str) -> list[str]:
    names: list[str] = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            names.append(node.name or "")
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def base_metric(name: str, known: set[str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return name


def check(rules_path: Path, telemetry: Path) -> tuple[list[str], list[tuple[str, str]]]:
    problems: list[str] = []
    alerts: list[tuple[str, str]] = []
    known = telemetry_metrics(telemetry)
    if not known:
        problems.append(f"{telemetry}: no metric constants found")
    doc = yaml.safe_load(rules_path.read_text())
    if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
        return [f"{rules_path}: must be a mapping with only `groups:` (a list)"], alerts
    seen_groups, seen_alerts = set(), set()
    for gi, g in enumerate(doc["groups"]):
        gname = g.get("name") if isinstance(g, dict) else None
        where = f"group {gname or gi}"
        if not gname:
            problems.append(f"{where}: no name")
        if gname in seen_groups:
            problems.append(f"{where}: duplicate group name")
        seen_groups.add(gname)
        for k in set(g) - GROUP_KEYS:
            problems.append(f"{where}: unknown field {k}")
        if "interval" in g and not DURATION.match(str(g["interval"])):
            problems.append(f"{where}: interval {g['interval']!r} is not a duration")
        if not isinstance(g.get("rules"), list) or not g["rules"]:
            problems.append(f"{where}: rules must be a non-empty list")
            continue
        for ri, r in enumerate(g["rules"]):
            name = r.get("alert") or r.get("record") or f"#{ri}"
            w = f"{where}, rule {name}"
            is_alert = "alert" in r
            if ("alert" in r) == ("record" in r):
                problems.append(f"{w}: exactly one of alert or record")
                continue
            for k in set(r) - (ALERT_KEYS if is_alert else RECORD_KEYS):
                problems.append(f"{w}: unknown field {k}")
            for k in ("for", "keep_firing_for"):
                if k in r and not DURATION.match(str(r[k])):
                    problems.append(f"{w}: {k} {r[k]!r} is not a duration")
            expr = r.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{w}: no expr")
                continue
            try:
                metrics = selected_metrics(expr)
            except ValueError as e:
                problems.append(f"{w}: expr does not parse: {e}")
                metrics = []
            for m in metrics:
                if m not in ALLOWED_BUILTIN and base_metric(m, known) not in known:
                    problems.append(f"{w}: metric {m} is not exported by reportd ({telemetry.name})")
            for k in (r.get("labels") or {}):
                if not LABEL_NAME.match(k):
                    problems.append(f"{w}: label name {k!r} is invalid")
            for k, v in {**(r.get("labels") or {}), **(r.get("annotations") or {})}.items():
                if str(v).count("{{") != str(v).count("}}"):
                    problems.append(f"{w}: {k}: unbalanced template braces")
            if not is_alert:
                continue
            if not ALERT_NAME.match(r["alert"]):
                problems.append(f"{w}: alert names are CamelCase")
            if r["alert"] in seen_alerts:
                problems.append(f"{w}: duplicate alert name")
            seen_alerts.add(r["alert"])
            sev = (r.get("labels") or {}).get("severity")
            if sev not in SEVERITIES:
                problems.append(f"{w}: labels.severity must be one of {sorted(SEVERITIES)}")
            ann = r.get("annotations") or {}
            for k in ("summary", "description", "runbook_url"):
                if not str(ann.get(k, "")).strip():
                    problems.append(f"{w}: annotations.{k} is missing")
            m = RUNBOOK.match(str(ann.get("runbook_url", "")))
            if not m:
                problems.append(f"{w}: runbook_url must point at RUNBOOK.md#<anchor>")
            else:
                alerts.append((r["alert"], m.group(1)))
    return problems, alerts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rules", type=Path)
    ap.add_argument("--telemetry", type=Path, default=ROOT / "src" / "telemetry.rs")
    args = ap.parse_args()
    if promql_parser is None:
        print("validate-alerts.py: promql-parser is missing; run scripts/validate-setup.sh", file=sys.stderr)
        return 2
    problems, alerts = check(args.rules, args.telemetry)
    for p in problems:
        print(f"{args.rules}: {p}")
    for name, anchor in alerts:
        print(f"  {name:<24} RUNBOOK.md#{anchor}", file=sys.stderr)
    print(f"{args.rules}: {len(alerts)} alerts, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
