"""The benchmark table, value for value the same as reportd's (src/bench.rs)."""
import datetime, json, resource, sys

COLUMNS = ["Região", "Valor", "Quantidade", "Data", "Ativo", "Região 2", "Valor 2", "Quantidade 2", "Data 2", "Ativo 2"]
BASE = datetime.date(2026, 1, 1)


def row(i):
    return (
        f"Região {i % 997} — São João",
        (i * 37 % 100_000) / 100.0 + 0.25,
        i % 1000,
        BASE + datetime.timedelta(days=i % 365),
        i % 3 == 0,
        f"Cidade {i % 211} ção",
        i * 0.5,
        i,
        BASE + datetime.timedelta(days=i % 730),
        i % 2 == 0,
    )


def report(seconds, path):
    import os
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_kb": peak_kb, "bytes": os.path.getsize(path)}))
