"""Renders BENCHMARKS.md from benchmarks/results.csv (written by scripts/bench.sh).

The hand-written analysis of what limited each scenario lives in benchmarks/analysis.md and is
included as it is, so re-running the benchmark never loses it.
"""
import csv
import os
import platform
import subprocess
import sys


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


csv_path, idle_rss, cold_ms, users, secs = sys.argv[1:6]
rows = list(csv.DictReader(open(csv_path)))
by = {(r["scenario"], r["connections"]): r for r in rows}


def num(scenario, c, field="requests_per_s"):
    try:
        return float(by[(scenario, c)][field])
    except (KeyError, ValueError):
        return None


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


cpu = sh("lscpu | awk -F: '/Model name/ {gsub(/^ +/, \"\", $2); print $2; exit}'")
mem = sh("free -g | awk '/Mem/ {print $2}'")
print("# Benchmarks\n")
print("Produced by `scripts/bench.sh` (one command; see README). Every ceiling is measured in the")
print("same run, on the same database, at the same concurrency.\n")
print("## Machine\n")
print(f"- {sh('nproc')} cores ({cpu}), {mem} GiB memory, {platform.system()} {platform.release()}")
print(f"- {sh('psql --version')}; scimd release build; wrk 2 threads; pgbench 2 threads")
print(f"- {users} users seeded; {secs} s per scenario; rate limiter on (one key, limit not reached)\n")
for c in sorted({r["connections"] for r in rows}, key=int):
    print(f"## {c} connections\n")
    print("| scenario | req/s | p50 ms | p99 ms | non-2xx | scimd CPU s | scimd RSS MB | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    floor = num("floor", c)
    update = num("pgbench_update", c)
    select = num("pgbench_select", c)
    get = num("get_user", c)
    small = num("member_small", c)
    refs = {
        "get_user": ("floor", floor), "filter_user_name": ("GET by id", get),
        "list_page": ("floor", floor), "put_user": ("pgbench update", update),
        "patch_user": ("pgbench update", update), "member_big": ("10-member group", small),
        "member_small": ("pgbench update", update), "floor": ("pgbench select", select),
    }
    for r in rows:
        if r["connections"] != c:
            continue
        ref = refs.get(r["scenario"])
        rel = f"{ratio(float(r['requests_per_s'] or 0), ref[1])} × {ref[0]}" if ref else ""
        print(f"| {r['scenario']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['non_2xx']} | {r['scimd_cpu_s']} | {r['scimd_rss_mb']} | {rel} |")
    print()

c = "16"
def verdict(ok):
    return "met" if ok else "missed"
get, floor = num("get_user", c), num("floor", c)
flt, upd = num("filter_user_name", c), num("pgbench_update", c)
put, patch = num("put_user", c), num("patch_user", c)
big, small = num("member_big", c), num("member_small", c)
peak_rss = max(float(r["scimd_rss_mb"] or 0) for r in rows if r["scimd_rss_mb"])
reads_p99 = max(num(s, c, "p99_ms") or 0 for s in ("get_user", "filter_user_name", "list_page"))
writes_p99 = max(num(s, c, "p99_ms") or 0 for s in ("put_user", "patch_user", "member_big", "member_small"))
print("## Targets (16 connections, Postgres, limiter on)\n")
print("| target | measured | |")
print("|---|---|---|")
targets = [
    ("GET by id ≥ 0.8 × floor", ratio(get, floor), get and floor and get >= 0.8 * floor),
    ("filter userName eq ≥ 0.9 × GET by id", ratio(flt, get), flt and get and flt >= 0.9 * get),
    ("PUT ≥ 0.6 × pgbench one-row update", ratio(put, upd), put and upd and put >= 0.6 * upd),
    ("PATCH ≥ 0.6 × pgbench one-row update", ratio(patch, upd), patch and upd and patch >= 0.6 * upd),
    ("p99 reads ≤ 10 ms", f"{reads_p99:.2f} ms", reads_p99 <= 10),
    ("p99 writes ≤ 25 ms", f"{writes_p99:.2f} ms", writes_p99 <= 25),
    ("member add/remove, 10,000 group ≥ 0.8 × 10 group", ratio(big, small), big and small and big >= 0.8 * small),
    ("RSS under load ≤ 100 MB", f"{peak_rss:.1f} MB", peak_rss <= 100),
    ("RSS idle ≤ 30 MB", f"{float(idle_rss):.1f} MB", float(idle_rss) <= 30),
    ("cold start (SQLite, empty) ≤ 200 ms", f"{cold_ms} ms", int(cold_ms) <= 200),
]
for name, measured, ok in targets:
    print(f"| {name} | {measured} | {verdict(ok)} |")
print()
analysis = os.path.join(os.path.dirname(csv_path), "analysis.md")
if os.path.exists(analysis):
    print(open(analysis).read())
