"""Runs one load command (wrk or pgbench) and appends one row to the results CSV.

Usage: measure.py --csv FILE --backend B --scenario S --connections C --kind wrk|pgbench
                  [--pid SERVER_PID] [--pg-url URL] [--pgbench-log-prefix P] [--raw FILE]
                  -- COMMAND...

Besides the load tool's own figures it records, over the command's lifetime:
- the CPU seconds of the server (/proc/PID/stat utime+stime), of every Postgres process (the
  postmaster's own and reaped children's time plus its live children's), of the load tool
  itself (rusage of the child), and how busy the whole machine was (/proc/stat);
- the server's largest VmRSS, sampled every 100 ms;
- Postgres transactions committed per request (pg_stat_database.xact_commit), i.e. how many
  separate transactions, so at least round trips, one request costs;
- per request, the blocks Postgres read from outside its shared_buffers (blks_read), and the
  full-page images and bytes it wrote to the WAL (pg_stat_wal): what a database larger than
  shared_buffers costs;
- with --statements FILE, where the database has pg_stat_statements: what each statement cost
  Postgres over the load (calls, execution time, rows, blocks, WAL bytes), one row per
  statement appended to FILE, so a report can say where Postgres spent a request.
"""
import argparse
import csv
import glob
import os
import re
import resource
import subprocess
import sys
import threading
import time

TCK = os.sysconf("SC_CLK_TCK")
FIELDS = ["users", "backend", "scenario", "connections", "seconds", "requests", "requests_per_s",
          "avg_ms", "p50_ms", "p99_ms", "non_2xx", "socket_errors", "scimd_cpu_s",
          "scimd_rss_peak_mb", "postgres_cpu_s", "loadgen_cpu_s", "machine_busy_pct",
          "xacts_per_request", "blks_read_per_request", "wal_fpi_per_request",
          "wal_bytes_per_request", "io_stall_pct"]


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # Fields after the command name, which is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2:].split()


def proc_cpu(pid, with_children=False):
    try:
        f = stat_fields(pid)
    except OSError:
        return 0
    # utime, stime, cutime, cstime are fields 14-17 (1-based), 11-14 after the name.
    ticks = int(f[11]) + int(f[12])
    if with_children:
        ticks += int(f[13]) + int(f[14])
    return ticks


def postmaster_pid():
    for path in glob.glob("/var/lib/postgresql/*/main/postmaster.pid"):
        try:
            return int(open(path).readline())
        except (OSError, ValueError):
            pass
    return None


def postgres_cpu(pm):
    if pm is None:
        return 0
    ticks = proc_cpu(pm, with_children=True)
    try:
        children = open(f"/proc/{pm}/task/{pm}/children").read().split()
    except OSError:
        children = []
    return ticks + sum(proc_cpu(c) for c in children)


def machine():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts[:8]) - idle, sum(parts[:8])


def io_stalled_us():
    """Microseconds in which every task that had work waited on I/O (the kernel's pressure
    stall information, its `full` line: the machine held up by the disk, where `some` also
    counts a commit's WAL flush that others work through), or None where the kernel does not
    report it."""
    try:
        with open("/proc/pressure/io") as f:
            return int(re.search(r"^full .*total=(\d+)", f.read(), re.M).group(1))
    except (OSError, AttributeError, ValueError):
        return None


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# Postgres counters read before and after the load: transactions committed and blocks read
# from outside shared_buffers (this database), full-page images and bytes written to the WAL
# (the whole server, which runs nothing else during a scenario).
PG_COUNTERS = ("xact_commit", "blks_read", "wal_fpi", "wal_bytes")


def pg_counters(url):
    if not url:
        return None
    out = subprocess.run(["psql", "-Atqc", "select xact_commit, blks_read, w.wal_fpi, w.wal_bytes "
                          "from pg_stat_database, pg_stat_wal w "
                          "where datname = current_database()", url],
                         capture_output=True, text=True)
    try:
        return dict(zip(PG_COUNTERS, (float(v) for v in out.stdout.strip().split("|")), strict=True))
    except ValueError:
        return None


STATEMENT_FIELDS = ["users", "backend", "scenario", "connections", "requests", "calls",
                    "exec_ms", "rows", "blocks", "wal_bytes", "statement"]
# One statement's counters; the text with its white space folded, so that it fits one line.
# The snapshot's own statement names pg_stat_statements and is left out.
STATEMENTS_SQL = (
    "select queryid, calls, total_exec_time, rows, shared_blks_hit + shared_blks_read, wal_bytes, "
    "regexp_replace(query, '\\s+', ' ', 'g') from pg_stat_statements "
    "where dbid = (select oid from pg_database where datname = current_database()) "
    "and query not like '%pg_stat_statements%'")


def pg_statements(url):
    """{queryid: [calls, exec_ms, rows, blocks, wal_bytes, text]}, or None where the database
    has no pg_stat_statements (the module must be in shared_preload_libraries and the
    extension created in the database)."""
    if not url:
        return None
    out = subprocess.run(["psql", "-AtqX", "-F", "\x1f", "-c", STATEMENTS_SQL, url],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    snapshot = {}
    for line in out.stdout.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 7:
            continue
        counters = [float(v) for v in parts[1:6]]
        kept = snapshot.setdefault(parts[0], [0.0] * 5 + [parts[6]])
        for i, v in enumerate(counters):
            kept[i] += v
    return snapshot


def write_statements(path, row, before, after, requests):
    """Appends one row per statement that ran during the load (its counters' growth)."""
    grown = []
    for queryid, now in after.items():
        was = before.get(queryid, [0.0] * 5)
        delta = [now[i] - was[i] for i in range(5)]
        if delta[0] > 0:
            grown.append((delta, now[5]))
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=STATEMENT_FIELDS)
        if new:
            w.writeheader()
        for (calls, exec_ms, rows, blocks, wal), text in sorted(grown, key=lambda g: -g[0][1]):
            w.writerow({"users": row["users"], "backend": row["backend"],
                        "scenario": row["scenario"], "connections": row["connections"],
                        "requests": requests, "calls": f"{calls:.0f}",
                        "exec_ms": f"{exec_ms:.1f}", "rows": f"{rows:.0f}",
                        "blocks": f"{blocks:.0f}", "wal_bytes": f"{wal:.0f}", "statement": text})


def to_ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        return ""
    v = float(m.group(1))
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"^\s*Latency\s+(\S+)", out, re.M)
    r["avg_ms"] = to_ms(m.group(1)) if m else ""
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        r[key] = to_ms(m.group(1)) if m else ""
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["requests_per_s"] = float(m.group(1)) if m else 0.0
    m = re.search(r"^non2xx=(\d+)", out, re.M)
    r["non_2xx"] = int(m.group(1)) if m else ""
    m = re.search(r"^socket_errors=(\d+)", out, re.M)
    r["socket_errors"] = int(m.group(1)) if m else ""
    return r


def percentile(sorted_values, p):
    if not sorted_values:
        return ""
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def parse_pgbench(out, log_prefix):
    r = {"non_2xx": "", "socket_errors": ""}
    m = re.search(r"^tps = ([\d.]+)", out, re.M)
    r["requests_per_s"] = float(m.group(1)) if m else 0.0
    m = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    r["avg_ms"] = float(m.group(1)) if m else ""
    m = re.search(r"number of failed transactions: (\d+)", out)
    r["socket_errors"] = int(m.group(1)) if m else ""
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    latencies = []
    for path in glob.glob(f"{log_prefix}*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    latencies.append(int(parts[2]) / 1000)
        os.remove(path)
    latencies.sort()
    r["p50_ms"] = percentile(latencies, 50)
    r["p99_ms"] = percentile(latencies, 99)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--connections", required=True)
    ap.add_argument("--kind", choices=["wrk", "pgbench"], required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--pg-url")
    ap.add_argument("--pgbench-log-prefix", default="")
    ap.add_argument("--raw", help="also append the tool's output here")
    ap.add_argument("--statements", help="append each statement's cost (pg_stat_statements) here")
    ap.add_argument("--users", default=os.environ.get("BENCH_N_USERS", ""),
                    help="users seeded in the database under test")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command

    pm = postmaster_pid()
    peak = [rss_mb(a.pid) if a.pid else 0.0]
    running = True

    def sample():
        while running:
            if a.pid:
                peak[0] = max(peak[0], rss_mb(a.pid))
            time.sleep(0.1)

    q0 = pg_statements(a.pg_url) if a.statements else None
    x0 = pg_counters(a.pg_url)
    s0 = proc_cpu(a.pid) if a.pid else 0
    p0 = postgres_cpu(pm)
    m0 = machine()
    io0 = io_stalled_us()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    running = False
    sampler.join()
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m1 = machine()
    io1 = io_stalled_us()
    p1 = postgres_cpu(pm)
    s1 = proc_cpu(a.pid) if a.pid else 0
    x1 = pg_counters(a.pg_url)
    q1 = pg_statements(a.pg_url) if q0 is not None else None
    if a.raw:
        with open(a.raw, "a") as f:
            f.write(f"### {a.backend} {a.scenario} c={a.connections}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")

    r = parse_wrk(proc.stdout) if a.kind == "wrk" else parse_pgbench(proc.stdout, a.pgbench_log_prefix)
    busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100
    row = {
        "users": a.users, "backend": a.backend, "scenario": a.scenario,
        "connections": a.connections,
        "seconds": f"{elapsed:.1f}",
        "scimd_cpu_s": f"{(s1 - s0) / TCK:.2f}" if a.pid else "",
        "scimd_rss_peak_mb": f"{peak[0]:.1f}" if a.pid else "",
        "postgres_cpu_s": f"{(p1 - p0) / TCK:.2f}" if pm else "",
        "loadgen_cpu_s": f"{(r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime):.2f}",
        "machine_busy_pct": f"{busy:.0f}",
        "xacts_per_request": "",
        # The share of the load's time in which all work waited on the disk: a scenario held
        # up by a stalling disk shows it here, not as a slower server.
        "io_stall_pct": f"{(io1 - io0) / 1e4 / elapsed:.0f}" if io0 is not None and io1 is not None else "",
    }
    row.update(r)
    for key in ("requests_per_s", "avg_ms", "p50_ms", "p99_ms"):
        if isinstance(row[key], float):
            row[key] = f"{row[key]:.2f}"
    if x0 is not None and x1 is not None and r["requests"]:
        def per(key, places):
            return f"{(x1[key] - x0[key]) / r['requests']:.{places}f}"
        row["xacts_per_request"] = per("xact_commit", 2)
        row["blks_read_per_request"] = per("blks_read", 2)
        row["wal_fpi_per_request"] = per("wal_fpi", 2)
        row["wal_bytes_per_request"] = per("wal_bytes", 0)
    if q0 is not None and q1 is not None and r["requests"]:
        write_statements(a.statements, row, q0, q1, r["requests"])
    new = not os.path.exists(a.csv) or os.path.getsize(a.csv) == 0
    with open(a.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in FIELDS})
    print(f"  {a.backend:8} {a.scenario:17} c={a.connections:>3}  {row['requests_per_s']:>10} req/s  "
          f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  non2xx {row['non_2xx']}  "
          f"server {row['scimd_cpu_s']} s  pg {row['postgres_cpu_s']} s  "
          f"loadgen {row['loadgen_cpu_s']} s  busy {row['machine_busy_pct']}%  "
          f"xact/req {row['xacts_per_request']}  rss {row['scimd_rss_peak_mb']} MB  "
          f"io stall {row['io_stall_pct']}%")


if __name__ == "__main__":
    main()
