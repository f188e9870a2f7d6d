"""Renders BENCHMARKS.md (on stdout) from benchmarks/results.csv, as scripts/bench.sh calls it.

Everything numeric comes from the CSV and the run's parameters; the observations that a reader
of the numbers wrote down live in scripts/bench/notes.md and are appended as they are.
"""
import argparse
import csv
import os
import platform
import subprocess

ap = argparse.ArgumentParser()
for name in ("csv", "growth-csv", "users", "seconds", "threads", "idle-rss", "peak-rss", "sqlite-idle-rss",
             "cold-ms", "started", "seed-env", "group-check", "pg-url", "notes", "compare",
             "compare-label", "stream-env", "stream-stats", "console-csv", "members-csv",
             "statements-csv"):
    ap.add_argument(f"--{name}", default="")
a = ap.parse_args()


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


rows = list(csv.DictReader(open(a.csv)))
seed = {}
if a.seed_env and os.path.exists(a.seed_env):
    for line in open(a.seed_env):
        k, _, v = line.strip().partition("=")
        seed[k] = v
conns = sorted({r["connections"] for r in rows}, key=int)
by = {(r["backend"], r["scenario"], r["connections"]): r for r in rows}


def bad(r):
    return (r.get("non_2xx") or "0") not in ("0", "")


def val(backend, scenario, c, field="requests_per_s"):
    try:
        if bad(by[(backend, scenario, c)]):
            return None  # a run with errors measures the errors, not the scenario
        return float(by[(backend, scenario, c)][field])
    except (KeyError, ValueError):
        return None


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(x, y):
    return x / y if x is not None and y else None


def cores(r, field):
    try:
        return float(r[field]) / float(r["seconds"])
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def io_stall(r):
    """The share (%) of a row's time in which all work waited on the disk, where it reached
    5 % (below that it is the disk's ordinary share, not a stall); else None."""
    stall = r.get("io_stall_pct") or ""
    return int(stall) if stall.isdigit() and int(stall) >= 5 else None


BIG = int(seed.get("SEED_BIG_GROUP", "10000"))
SCENARIOS = [
    # backend, scenario, title, what, [(ceiling backend, ceiling scenario, label)]
    ("postgres", "pgbench_select", "Ceiling: pgbench primary-key select",
     "`select doc from users where org_id = '…' and id = (select id from bench_ids where n = :n)`, "
     "prepared, random n (every pgbench ceiling runs `-M prepared` over plain TCP, as scimd "
     "connects)", []),
    ("postgres", "pgbench_update", "Ceiling: pgbench one-row update",
     "`update users set modified_at = modified_at + 1 where org_id = '…' and id = (…)`, prepared, random row, "
     "auto-commit", []),
    ("postgres", "pgbench_user_write", "Ceiling: the shape of scimd's user write",
     "read the row (`select id, doc, version …`), then one statement: `update users set doc = "
     "…, doc_folded = …, modified_at = …, version = version + 1 where id = … and version = "
     "<read> returning` the row and the user's groups, with the change-log entry's `insert into "
     "changes` (17 columns, the request's data as `jsonb`) in a data-modifying `with`: what PUT "
     "and PATCH ask of Postgres, two round trips and a WAL flush, with no server in between",
     [("postgres", "pgbench_update", "pgbench update")]),
    ("postgres", "pgbench_limiter", "Diagnostic: scimd's limiter statement alone",
     "the limiter's `insert … on conflict (bucket) do update … returning tat` on one bucket, as "
     "one API key makes it, from 4 clients (scimd's limiter pool) with "
     "`synchronous_commit = off`, whatever the connection count", []),
    ("postgres", "pgbench_hot_row", "Diagnostic: every client updates the same row",
     "`update bench_hot set v = v + 1 where id = 1`: the ceiling for writes that serialise on "
     "one row lock and wait for a WAL flush each (as member changes lock their group's row)",
     [("postgres", "pgbench_update", "pgbench update")]),
    ("postgres", "floor", "Ceiling: floor (axum + sqlx, one select)",
     "`GET /floor/{id}` of `examples/floor.rs`: one `select id, doc from users where org_id = $1 and id = $2` "
     "on scimd's own 16-connection pool (`store/sql/conns.rs`), answered as JSON (its CPU and RSS "
     "are in the server columns)",
     [("postgres", "pgbench_select", "pgbench select")]),
    ("postgres", "floor_statement", "Diagnostic: the floor with scimd's statement",
     "`GET /floor_statement/{id}` of `examples/floor.rs`: the floor, reading the user with "
     "scimd's own read-by-id statement (`store::POSTGRES_USER_BY_ID`: the user's ten columns "
     "and its groups, which RFC 7643 §4.1.2 returns by default). Against the floor: what the "
     "statement costs; against it, GET by id: what scimd does around the statement",
     [("postgres", "floor", "floor")]),
    ("postgres", "floor_write", "Diagnostic: the floor for a write (axum + sqlx, the write's SQL)",
     "`PATCH /floor_write/{id}` of `examples/floor.rs`, sent PATCH's body (left unread): "
     "`pgbench_user_write`'s two statements, as it runs them, behind HTTP on scimd's own pool, "
     "the written row answered as JSON. Against `pgbench_user_write`: what any server on this "
     "stack adds to the write's SQL (its HTTP, its load generator), on the same two cores; "
     "against it, PUT and PATCH: what scimd does around the SQL",
     [("postgres", "pgbench_user_write", "pgbench_user_write")]),
    ("postgres", "get_user", "GET /scim/v2/Users/{id}", "random seeded user",
     [("postgres", "floor", "floor"), ("postgres", "floor_statement", "floor with scimd's statement"),
      ("postgres", "pgbench_select", "pgbench select")]),
    ("postgres", "filter_user_name", "GET /scim/v2/Users?filter=userName eq \"…\"",
     "random seeded userName, URL-encoded",
     [("postgres", "get_user", "GET by id"), ("postgres", "floor", "floor"),
      ("postgres", "pgbench_select", "pgbench select")]),
    ("postgres", "list_first", "GET /scim/v2/Users?count=100 (first page)",
     "the first 100 users in creation order; the page is full, so `totalResults` needs the "
     "exact count of all N users",
     [("postgres", "get_user", "GET by id"), ("postgres", "floor", "floor")]),
    ("postgres", "list_page", "GET /scim/v2/Users?count=100&startIndex=<random>",
     "startIndex uniform over 1…N (offset paging)",
     [("postgres", "floor", "floor")]),
    ("postgres", "put_user", "PUT /scim/v2/Users/{id} (merge)",
     "`{\"userName\": <its own>, \"displayName\": <random>}`, no password",
     [("postgres", "pgbench_update", "pgbench update"),
      ("postgres", "pgbench_user_write", "same shape in pgbench"),
      ("postgres", "floor_write", "write floor")]),
    ("postgres", "patch_user", "PATCH /scim/v2/Users/{id} replace displayName",
     "one `replace` operation on `displayName`",
     [("postgres", "pgbench_update", "pgbench update"),
      ("postgres", "pgbench_user_write", "same shape in pgbench"),
      ("postgres", "floor_write", "write floor")]),
    ("postgres", "member_small", "PATCH /scim/v2/Groups/{id}: member add/remove, 10-member group",
     "alternately adds a user from outside both groups and removes the one it added earliest "
     "(each wrk thread has its own users)",
     [("postgres", "pgbench_update", "pgbench update"),
      ("postgres", "pgbench_hot_row", "same-row update")]),
    ("postgres", "member_big",
     f"PATCH /scim/v2/Groups/{{id}}: member add/remove, {BIG:,}-member group",
     "as above, on the big group",
     [("postgres", "member_small", "10-member group"),
      ("postgres", "pgbench_update", "pgbench update"),
      ("postgres", "pgbench_hot_row", "same-row update")]),
    ("sqlite", "get_user", "SQLite: GET /scim/v2/Users/{id}", "scimd on an SQLite file",
     [("postgres", "get_user", "same on Postgres")]),
    ("sqlite", "filter_user_name", "SQLite: filter userName eq", "scimd on an SQLite file",
     [("sqlite", "get_user", "SQLite GET by id"),
      ("postgres", "filter_user_name", "same on Postgres")]),
    ("sqlite", "list_first", "SQLite: first list page (count=100)",
     "scimd on an SQLite file", [("postgres", "list_first", "same on Postgres")]),
    ("sqlite", "list_page", "SQLite: list page (count=100, random startIndex)",
     "scimd on an SQLite file", [("postgres", "list_page", "same on Postgres")]),
]

out = []
p = out.append
pg_version = sh(f"psql '{a.pg_url}' -Atc 'show server_version'") if a.pg_url else "?"
cpu_model = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
WRK = sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1,2")
mem = sh("free -h | awk '/^Mem:/ {print $2 \" total, \" $7 \" available at report time\"}'")
p("# Benchmarks\n")
p("Generated by `scripts/bench.sh`: do not edit by hand (observations go in "
  "`scripts/bench/notes.md`). Raw numbers: `benchmarks/results.csv`. Every ceiling is measured "
  "in the same run, on the same database, at the same connection counts.\n")
p("```sh")
grow = os.environ.get("BENCH_GROW")
grow = f' BENCH_GROW="{grow}"' if grow is not None else ""
p(f"BENCH_USERS={a.users} BENCH_SECONDS={a.seconds}{grow} scripts/bench.sh   # this run")
p("scripts/bench.sh                                    # default: 100,000 users, 15 s")
p("```\n")
p("## Machine and run\n")
p(f"- {sh('nproc')} cores ({cpu_model}), memory {mem}, {platform.system()} {platform.release()}")
p(f"- PostgreSQL {pg_version} on 127.0.0.1 (the machine's shared server, default settings); "
  f"{WRK}; {sh('rustc --version')}")
p("- **Noise**: the figures vary by about ±15 % between runs on this machine, and the `busy` "
  "column counts every process's CPU. The load generator (wrk or pgbench, "
  f"{a.threads} threads), Postgres and the server under test share the same 2 cores.")
p(f"- Run started {a.started}; {int(a.users):,} users seeded through the `Store` trait "
  f"({seed.get('SEED_USERS_SECONDS', '?')} s), groups of {BIG:,} "
  f"and {seed.get('SEED_SMALL_GROUP', '?')} members; {a.seconds} s per scenario; "
  "scimd release build, `SCIMD_RATE_LIMIT_PER_MINUTE=100000000` (the limiter runs on every "
  "request, one key); logging at `info`, so every request writes its JSON access-log line.")
if a.group_check:
    big_after, _, small_after = a.group_check.partition(" ")
    p(f"- After the member scenarios the groups have {big_after} and {small_after} members "
      "(each wrk thread ends with up to its connections' worth of adds not yet undone, and a "
      "remove sent while its add was still queued behind the group's lock removes nothing, so "
      "a few more stay).")
p("")
p("Columns: `req/s`; latency percentiles from wrk `--latency` (pgbench: from its per-transaction "
  "log); `non-2xx` answers (must be 0, or the row is marked invalid and left out of the "
  "targets); CPU in **cores** (CPU seconds ÷ wall seconds) of the server (scimd, or floor in "
  "its row), of all Postgres processes, and of the load generator; `busy` is the whole machine; "
  "`xact/req` is Postgres transactions committed per request "
  "(`pg_stat_database.xact_commit`: each auto-committed statement is one); `RSS` is the "
  "server's largest VmRSS sampled every 100 ms during the scenario.\n")


def row_cells(r):
    return [fmt(float(r["requests_per_s"])), r["p50_ms"] or "–", r["p99_ms"] or "–",
            r["avg_ms"] or "–", r["non_2xx"] or "–", fmt(cores(r, "scimd_cpu_s"), 2),
            fmt(cores(r, "postgres_cpu_s"), 2), fmt(cores(r, "loadgen_cpu_s"), 2),
            f"{r['machine_busy_pct']} %", r["xacts_per_request"] or "–",
            r["scimd_rss_peak_mb"] or "–"]


HEAD = ("| conns | req/s | p50 ms | p99 ms | avg ms | non-2xx | server cores | Postgres cores "
        "| loadgen cores | busy | xact/req | RSS MB | ratio |")
SEP = "|---" * 13 + "|"

p("## Overview\n")
for c in conns:
    p(f"### {c} connections\n")
    p("| backend | scenario | req/s | p50 ms | p99 ms | non-2xx | ratio |")
    p("|---|---|---|---|---|---|---|")
    for backend, scenario, title, _, refs in SCENARIOS:
        r = by.get((backend, scenario, c))
        if not r:
            continue
        rel = "; ".join(f"{fmt(ratio(float(r['requests_per_s']), val(b, s, c)), 2)} × {label}"
                        for b, s, label in refs[:1])
        if bad(r):
            rel = f"**invalid: {r['non_2xx']} non-2xx**"
        p(f"| {backend} | {scenario} | {fmt(float(r['requests_per_s']))} | {r['p50_ms'] or '–'} | "
          f"{r['p99_ms'] or '–'} | {r['non_2xx'] or '–'} | {rel} |")
    p("")

p("## Scenarios\n")
for backend, scenario, title, what, refs in SCENARIOS:
    present = [c for c in conns if (backend, scenario, c) in by]
    if not present:
        continue
    p(f"### {title}\n")
    p(f"`{backend}/{scenario}`: {what}.\n")
    p(HEAD)
    p(SEP)
    for c in present:
        r = by[(backend, scenario, c)]
        rel = "; ".join(f"{fmt(ratio(float(r['requests_per_s']), val(b, s, c)), 2)} × {label}"
                        for b, s, label in refs)
        if bad(r):
            rel = f"**invalid: {r['non_2xx']} non-2xx answers** " + rel
        p(f"| {c} | " + " | ".join(row_cells(r)) + f" | {rel} |")
    p("")

# ---------------------------------------------------------------- targets
c = "16"
get, floor = val("postgres", "get_user", c), val("postgres", "floor", c)
flt, upd = val("postgres", "filter_user_name", c), val("postgres", "pgbench_update", c)
put, patch = val("postgres", "put_user", c), val("postgres", "patch_user", c)
big, small = val("postgres", "member_big", c), val("postgres", "member_small", c)
peak_rss = max([float(r["scimd_rss_peak_mb"]) for r in rows
                if r["backend"] == "postgres" and not r["scenario"].startswith("floor")
                and r["scimd_rss_peak_mb"]] + [float(a.peak_rss or 0)])
idle = float(a.idle_rss or 0)
cold = float(a.cold_ms or 0)
targets = []


def target(name, measured, ok):
    targets.append((name, measured, ok))


def ratio_target(name, x, y, k):
    rr = ratio(x, y)
    target(name, f"{fmt(rr, 2)} ({fmt(x)} vs {fmt(y)} req/s)", rr is not None and rr >= k)


def p99_target(name, scenario, limit):
    v = val("postgres", scenario, c, "p99_ms")
    target(f"p99 {name} ≤ {limit} ms", f"{fmt(v, 2)} ms", v is not None and v <= limit)


ratio_target("GET by id ≥ 0.8 × floor", get, floor, 0.8)
ratio_target("filter userName eq ≥ 0.9 × GET by id", flt, get, 0.9)
ratio_target("PUT ≥ 0.6 × pgbench one-row update", put, upd, 0.6)
ratio_target("PATCH ≥ 0.6 × pgbench one-row update", patch, upd, 0.6)
p99_target("GET by id", "get_user", 10)
p99_target("filter userName eq", "filter_user_name", 10)
p99_target("list, first page (count=100)", "list_first", 10)
p99_target("list page (random deep offset)", "list_page", 10)
p99_target("PUT", "put_user", 25)
p99_target("PATCH", "patch_user", 25)
p99_target("member add/remove, 10 group", "member_small", 25)
p99_target(f"member add/remove, {BIG:,} group", "member_big", 25)
ratio_target(f"member add/remove: {BIG:,} group ≥ 0.8 × 10 group", big, small, 0.8)
uw = val("postgres", "pgbench_user_write", c)
ratio_target("PUT ≥ 0.8 × pgbench_user_write (the same SQL, no server)", put, uw, 0.8)
ratio_target("PATCH ≥ 0.8 × pgbench_user_write (the same SQL, no server)", patch, uw, 0.8)
ratio_target("list, first page ≥ 0.2 × GET by id", val("postgres", "list_first", c), get, 0.2)
# Member changes against the build before this round of work, only where this run measured
# both (BENCH_AB_OLD): medians of the alternated rounds on the big group.
ab_member = {build: [float(r["requests_per_s"]) for r in rows
                     if r["backend"].startswith(f"ab-{build}-")
                     and r["scenario"] == "member_big" and not bad(r)]
             for build in ("old", "new")}
if ab_member["old"] and ab_member["new"]:
    import statistics
    ratio_target(f"member add/remove, {BIG:,} group ≥ 2 × {a.compare_label or 'the earlier build'} "
                 "(alternated A/B, medians)", statistics.median(ab_member["new"]),
                 statistics.median(ab_member["old"]), 2.0)
for scenario in ("get_user", "filter_user_name", "list_first", "list_page"):
    lite, pg = val("sqlite", scenario, c), val("postgres", scenario, c)
    if lite is not None:
        ratio_target(f"SQLite {scenario} ≥ 0.8 × Postgres", lite, pg, 0.8)
target("RSS under load ≤ 100 MB (Postgres run, peak over all connection counts)",
       f"{peak_rss:.1f} MB", peak_rss <= 100)
target("RSS idle ≤ 30 MB (after start and one request)", f"{idle:.1f} MB", idle <= 30)
target("cold start to first /healthz 200, empty SQLite, best of 5 ≤ 50 ms", f"{cold:.1f} ms",
       0 < cold <= 50)
p("## Targets (16 connections, Postgres, limiter on)\n")
p("| target | measured | |")
p("|---|---|---|")
for name, measured, ok in targets:
    p(f"| {name} | {measured} | {'met' if ok else '**missed**'} |")
met = sum(1 for t in targets if t[2])
line = f"\n{met} of {len(targets)} met."
if a.sqlite_idle_rss:
    line += f" SQLite-backed scimd: {a.sqlite_idle_rss} MB idle."
p(line + "\n")

# ---------------------------------------------------------------- what limited it
p("## What limited it\n")
p("### Measured split (16 connections)\n")
p("Where the 2 cores went in each scenario, and how many Postgres transactions one request "
  "cost. `busy` at 85 % or more counts as CPU-bound (the machine's CPU was the limit) and names "
  "the largest consumer; below that, requests were waiting (locks, WAL flushes, round trips in "
  "series). Where all work on the machine waited on the disk for 5 % of the time or more "
  "(the kernel's pressure stall information, the `full` line of `/proc/pressure/io`), the "
  "reading says so.\n")
p("| scenario | req/s | server cores | Postgres cores | loadgen cores | busy | xact/req | "
  "server CPU µs/req | Postgres CPU µs/req | reading |")
p("|---|---|---|---|---|---|---|---|---|---|")
for backend, scenario, title, _, _ in SCENARIOS:
    r = by.get((backend, scenario, c))
    if not r:
        continue
    rps = float(r["requests_per_s"]) or None
    sc, pc, lc = cores(r, "scimd_cpu_s"), cores(r, "postgres_cpu_s"), cores(r, "loadgen_cpu_s")
    busy = float(r["machine_busy_pct"] or 0)
    parts = {"server": sc or 0, "Postgres": pc or 0, "load generator": lc or 0}
    top = max(parts, key=parts.get)
    if bad(r):
        reading = "invalid (non-2xx answers)"
    elif busy >= 85:
        reading = f"CPU-bound ({busy:.0f} % busy); most to {top}"
    else:
        reading = f"waiting ({busy:.0f} % busy)"
    if io_stall(r) is not None:
        reading += f"; I/O stall {io_stall(r)} % of the time"
    n = float(r["requests"] or 0)

    def per(field):
        try:
            return fmt(float(r[field]) / n * 1e6, 0) if n else "–"
        except ValueError:
            return "–"

    p(f"| {backend}/{scenario} | {fmt(rps)} | {fmt(sc, 2)} | {fmt(pc, 2)} | {fmt(lc, 2)} | "
      f"{busy:.0f} % | {r['xacts_per_request'] or '–'} | {per('scimd_cpu_s')} | {per('postgres_cpu_s')} | {reading} |")
p("")

# ---------------------------------------------------------------- statement by statement
# The main table's Postgres scenarios, in its order.
STATEMENT_SCENARIOS = [scenario for backend, scenario, *_ in SCENARIOS if backend == "postgres"]
p("### Postgres's time per request, statement by statement (16 connections)\n")
statements = []
if a.statements_csv and os.path.exists(a.statements_csv) and os.path.getsize(a.statements_csv):
    statements = [r for r in csv.DictReader(open(a.statements_csv))
                  if r["backend"] == "postgres" and r["connections"] == c]
if not statements:
    p("Not measured in this run: the Postgres server had no `pg_stat_statements` in its "
      "`shared_preload_libraries` (the README's Benchmarks section says how to add it).\n")
else:
    p("From `pg_stat_statements` (bench.sh creates the extension where the server preloads the "
      "module), per request of each scenario: each statement's calls, its time in Postgres's "
      "executor (wall clock, so it includes waits for locks, the disk and a core), the rows it "
      "returned or wrote, the buffer blocks it touched and the WAL it wrote. Parsing, binding "
      "and sending results are outside the executor's time: the rest of the Postgres CPU "
      "µs/req above is that and the backends' other work. Statements under 2 % of a "
      "scenario's executor time are summed as *other*, left out where that rounds to "
      "nothing.\n")
    p("| scenario | statement | calls/req | executor µs/req | rows/req | blocks/req | WAL bytes/req |")
    p("|---|---|---|---|---|---|---|")

    def shortened(text, others, limit=120):
        """The statement's first `limit` characters; where another statement of the scenario
        begins alike for longer than that, its beginning and then where the two part."""
        common = max((len(os.path.commonprefix([text, o])) for o in others if o != text),
                     default=0)
        if len(text) <= limit:
            short = text
        elif common < limit - 20:
            short = text[:limit].rstrip() + " …"
        else:
            start = text.rfind(" ", 0, common - 5) + 1
            short = text[:50].rstrip() + " … " + text[start:start + limit - 50].strip() + " …"
        return "`" + short.replace("`", "'").replace("|", "\\|") + "`"

    for scenario in STATEMENT_SCENARIOS:
        mine = [r for r in statements if r["scenario"] == scenario]
        if not mine:
            continue
        n = float(mine[0]["requests"]) or 1.0
        total = sum(float(r["exec_ms"]) for r in mine) or 1.0
        shown = [r for r in mine if float(r["exec_ms"]) >= 0.02 * total]
        rest = [r for r in mine if float(r["exec_ms"]) < 0.02 * total]

        def cells(rs):
            def per(field, digits):
                return fmt(sum(float(r[field]) for r in rs) / n, digits)
            return (f"{per('calls', 2)} | {fmt(sum(float(r['exec_ms']) for r in rs) / n * 1000, 1)} | "
                    f"{per('rows', 2)} | {per('blocks', 1)} | {per('wal_bytes', 0)}")

        texts = [r["statement"] for r in shown]
        for r in shown:
            p(f"| {scenario} | {shortened(r['statement'], texts)} | {cells([r])} |")
        # The snapshots' neighbours (a vacuum, the counters read around the load) round to
        # nothing; they are not shown.
        if sum(float(r["exec_ms"]) for r in rest) / n * 1000 >= 0.05:
            p(f"| {scenario} | *other ({len(rest)})* | {cells(rest)} |")
        p(f"| {scenario} | **all** | {cells(mine)} |")
    p("")

# ---------------------------------------------------------------- how it grows
growth = [r for r in rows if r["backend"] == "postgres" and r["connections"] == "16"
          and r.get("users")]
if a.growth_csv and os.path.exists(a.growth_csv) and os.path.getsize(a.growth_csv):
    growth += list(csv.DictReader(open(a.growth_csv)))
sizes = sorted({int(r["users"]) for r in growth if r.get("users")})
if len(sizes) > 1:
    gby = {(r["scenario"], int(r["users"])): r for r in growth if r.get("users")}
    p("## How it grows (Postgres, 16 connections)\n")
    p("The same scenarios against databases of different sizes, each seeded the same way and "
      "served by its own scimd, every scenario run at each size back to back (so that the "
      "machine's drift over a run does not pass for growth). "
      "Per request: throughput, p50 latency, CPU (scimd + Postgres) in µs, and the blocks "
      "Postgres read from outside its `shared_buffers` and the full-page images it wrote to "
      "its WAL (what a database larger than `shared_buffers` costs it), how busy the machine "
      "was and, where it was 5 % or more, the share of the time in which all work on the "
      "machine waited on the disk (*I/O stall*: a figure held up by the disk, not by the "
      "database's size). Index-backed "
      "requests stay flat; a page at a random `startIndex` does not (its offset walk grows "
      "with N), and the notes say why.\n")
    p("| scenario | " + " | ".join(f"{n:,} users" for n in sizes) + " |")
    p("|---|" + "---|" * len(sizes))
    for scenario, title in [("get_user", "GET by id"), ("filter_user_name", "filter userName eq"),
                            ("patch_user", "PATCH replace displayName"),
                            ("list_first", "list, first page (count=100)"),
                            ("list_page", "list, random startIndex (count=100)")]:
        cells = []
        for n in sizes:
            r = gby.get((scenario, n))
            if not r or bad(r):
                cells.append("n/a")
                continue
            req = float(r["requests"] or 0)
            cpu = (float(r["scimd_cpu_s"] or 0) + float(r["postgres_cpu_s"] or 0)) / req * 1e6 \
                if req else None
            reads = ""
            if r.get("blks_read_per_request"):
                reads = (f", {r['blks_read_per_request']} blocks read, "
                         f"{r['wal_fpi_per_request']} full-page images")
            stall = f", **I/O stall {io_stall(r)} %**" if io_stall(r) is not None else ""
            cells.append(f"{fmt(float(r['requests_per_s']))} req/s, p50 {r['p50_ms']} ms, "
                         f"{fmt(cpu)} µs{reads}, {r['machine_busy_pct']} % busy{stall}")
        p(f"| {title} | " + " | ".join(cells) + " |")
    p("")
# ---------------------------------------------------------------- against an earlier build
if a.compare and os.path.exists(a.compare):
    old = {(r["backend"], r["scenario"], r["connections"]): r for r in csv.DictReader(open(a.compare))}
    label = a.compare_label or "the earlier build"
    p(f"## This build against {label}\n")
    p(f"Both measured in the same session on this machine, one after the other, with the same "
      f"parameters (`BENCH_COMPARE`): {label} first, its results kept as they came out of its "
      f"own `scripts/bench.sh`. Rates swing between sessions, so only this ratio is "
      f"comparable.\n")
    p("| scenario | connections | earlier req/s | this build req/s | ratio | earlier p99 ms | "
      "this build p99 ms |")
    p("|---|---|---|---|---|---|---|")
    for (backend, scenario, conn), r in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1], int(kv[0][2]))):
        o = old.get((backend, scenario, conn))
        if not o or backend != "postgres" or scenario.startswith(("pgbench", "floor")):
            continue
        if bad(r) or bad(o):
            continue
        new_rps, old_rps = float(r["requests_per_s"]), float(o["requests_per_s"])
        p(f"| {backend}/{scenario} | {conn} | {fmt(old_rps)} | {fmt(new_rps)} | "
          f"{fmt(ratio(new_rps, old_rps), 2)} | {o['p99_ms']} | {r['p99_ms']} |")
    p("")
# ---------------------------------------------------------------- alternated rounds
def alternated_rows(before_prefix, after_prefix):
    """One table row per write scenario measured in alternated rounds: the runs whose backend
    starts with `before_prefix` against those with `after_prefix`, each round's rate, the
    ratio of the medians and the median p99s."""
    import statistics
    med = lambda rs, f: statistics.median(float(r[f]) for r in rs)
    each = lambda rs: ", ".join(fmt(float(r["requests_per_s"])) for r in rs)
    for scenario in ("put_user", "patch_user", "member_big"):
        def runs(prefix):
            return [r for r in rows if r["backend"].startswith(prefix)
                    and r["scenario"] == scenario and not bad(r)]
        before, after = runs(before_prefix), runs(after_prefix)
        if not before or not after:
            continue
        b, f = med(before, "requests_per_s"), med(after, "requests_per_s")
        p(f"| {scenario} | {len(before)} | {each(before)} | {each(after)} | "
          f"**{fmt(ratio(f, b), 2)}** | {med(before, 'p99_ms'):.2f} | {med(after, 'p99_ms'):.2f} |")


# ---------------------------------------------------------------- writes with a push stream
if a.stream_env and os.path.exists(a.stream_env) and a.stream_stats and os.path.exists(a.stream_stats):
    import json
    env = dict(line.strip().split("=", 1) for line in open(a.stream_env) if "=" in line)
    stats = json.load(open(a.stream_stats))
    p("## Writes with one push stream (SCIM events)\n")
    p("PUT and PATCH at 16 connections without and with one push stream to a receiver on "
      "loopback (`examples/event_receiver.rs`, answers 202) that measures each SET from the "
      "change's commit (`toe`) to its arrival; each round runs both, odd rounds without the "
      "stream first and even rounds with it first (a new stream each round), on the same "
      "server and database. Medians of the rounds. "
      "The receiver runs on the same two cores, so its own work is in the figures too.\n")
    p("| scenario | rounds | without req/s (each round) | with the stream req/s (each round) | "
      "ratio of medians | p99 ms without | p99 ms with |")
    p("|---|---|---|---|---|---|---|")
    alternated_rows("stream-off-", "stream-on-")
    expected = int(env.get("EXPECTED", "0"))
    p("")
    count = int(stats.get('count', 0))
    p(f"- Events: {expected:,} changes made with a stream, {count:,} SETs "
      f"received ({int(stats.get('unreadable', 0))} unreadable); at most "
      f"{int(env.get('MOST_IN_FLIGHT', '0')):,} were still on their way when a load stopped, "
      f"all delivered within {env.get('DRAIN_SECONDS', '?')} s."
      + (f" The {count - expected:,} SETs beyond the changes counted are entries from just "
         "before a stream's creation: a new stream starts at the head of the log, which a "
         "transaction still open at that moment holds back." if count > expected else ""))
    p(f"- Commit to arrival: p50 {stats.get('p50_ms', 0):.1f} ms, p99 {stats.get('p99_ms', 0):.1f} ms, "
      f"max {stats.get('max_ms', 0):.1f} ms.\n")

# ---------------------------------------------------------------- Bulk against single POSTs
bulk_rounds = [r for r in rows if r["backend"].startswith("bulk-") and not bad(r)]
if bulk_rounds:
    import statistics
    ops = int(os.environ.get("BULK_OPS", "1000"))
    single = [float(r["requests_per_s"]) for r in bulk_rounds if r["backend"].startswith("bulk-single-")]
    bulk = [float(r["requests_per_s"]) * ops for r in bulk_rounds if r["backend"].startswith("bulk-bulk-")]
    p("## Bulk against single POSTs\n")
    p(f"Users created per second: single `POST /Users` at 16 connections, and `POST /Bulk` "
      f"with {ops:,} POST operations per request at 4 connections (each operation with its "
      f"own change-log entry, as a single POST; consecutive creates share a transaction, up "
      f"to 100), alternated on the same server and database. Medians of the rounds.\n")
    p("| path | rounds | users/s (each round) | median users/s |")
    p("|---|---|---|---|")
    for name, values in (("single POST, 16 connections", single), (f"Bulk of {ops:,}, 4 connections", bulk)):
        if values:
            p(f"| {name} | {len(values)} | {', '.join(fmt(v) for v in values)} | "
              f"{fmt(statistics.median(values))} |")
    if single and bulk:
        k = statistics.median(bulk) / statistics.median(single)
        p(f"\nBulk creates **{k:.2f} ×** the users per second of single POSTs (target ≥ 3 ×: "
          f"{'met' if k >= 3 else 'missed'}).\n")

# ---------------------------------------------------------------- console pages
if a.console_csv and os.path.exists(a.console_csv) and os.path.getsize(a.console_csv):
    pages = list(csv.DictReader(open(a.console_csv)))
    entries = pages[0].get("entries", "?") if pages else "?"
    p("## Console pages\n")
    p(f"Each page of the operator console fetched signed in, one request at a time, over "
      f"loopback (curl's time to the last byte), at {int(a.users or 0):,} users and "
      f"{int(entries):,} change-log entries in the organization, with 30 days of hourly "
      f"activity counts. Target: every page ≤ 50 ms.\n")
    p("| page | requests | median ms | slowest ms | target |")
    p("|---|---|---|---|---|")
    for r in pages:
        ok = float(r["median_ms"]) <= 50
        p(f"| {r['page']} | {r['requests']} | {float(r['median_ms']):.1f} | "
          f"{float(r['max_ms']):.1f} | {'met' if ok else 'missed'} |")
    p("")

# ---------------------------------------------------------------- a large group
if a.members_csv and os.path.exists(a.members_csv) and os.path.getsize(a.members_csv):
    paths = list(csv.DictReader(open(a.members_csv)))
    members = paths[0].get("members", "") if paths else ""
    p(f"## A group of {int(members):,} members\n" if members.isdigit() else "## A large group\n")
    p("Each path that reads or changes one very large group, against the running server: the "
      "kernel's peak-RSS mark is reset before each path, and the growth is the peak over the "
      "resident size just before it. A group read lists at most `SCIMD_GROUP_INLINE_MEMBERS` "
      "(10,000) members and points larger groups at `/GroupMembers`. Target: every path "
      "≤ 50 MB.\n")
    p("| path | requests | seconds | RSS before MB | peak growth MB | target |")
    p("|---|---|---|---|---|---|")
    for r in paths:
        ok = float(r["growth_mb"]) <= 50
        p(f"| {r['path']} | {r['requests']} | {float(r['seconds']):.2f} | "
          f"{float(r['rss_before_mb']):.1f} | {float(r['growth_mb']):.1f} | "
          f"{'met' if ok else 'missed'} |")
    p("")

# ---------------------------------------------------------------- A/B, alternated
two = [r for r in rows if r["backend"].startswith("two-")]
if two:
    import statistics
    p("## Two scimd processes on one Postgres\n")
    p("A second scimd on the same database; each process gets half the connections (8 + 8, "
      "two load generators at once) against the first process alone at 16, alternated. Both "
      "use one API key, whose rate limit they share in Postgres. On this two-core machine the "
      "two processes, Postgres and the load generators share the same cores: the figures show "
      "the overhead of a second process and that nothing fails, not the gain of a second "
      "machine. Medians of the rounds.\n")
    p("| scenario | rounds | one process req/s | two processes req/s (a + b) | ratio | "
      "non-2xx | one p99 ms | two p99 ms (worse of a, b) |")
    p("|---|---|---|---|---|---|---|---|")
    for scenario in ("get_user", "patch_user"):
        rounds = sorted({r["backend"].rsplit("-", 1)[1] for r in two if r["scenario"] == scenario})
        one, both, p99_one, p99_two, errors = [], [], [], [], 0
        for n in rounds:
            pick = lambda prefix: [r for r in two if r["backend"] == f"{prefix}-{n}"
                                   and r["scenario"] == scenario]
            o, a_, b_ = pick("two-one"), pick("two-a"), pick("two-b")
            if not (o and a_ and b_):
                continue
            one.append(float(o[0]["requests_per_s"]))
            both.append(float(a_[0]["requests_per_s"]) + float(b_[0]["requests_per_s"]))
            p99_one.append(float(o[0]["p99_ms"]))
            p99_two.append(max(float(a_[0]["p99_ms"]), float(b_[0]["p99_ms"])))
            errors += sum(int(r["non_2xx"] or 0) for r in (o[0], a_[0], b_[0]))
        if not one:
            continue
        m1, m2 = statistics.median(one), statistics.median(both)
        p(f"| {scenario} | {len(one)} | {fmt(m1)} | {fmt(m2)} | **{fmt(ratio(m2, m1), 2)}** | "
          f"{errors} | {statistics.median(p99_one):.2f} | {statistics.median(p99_two):.2f} |")
    p("")
ab = [r for r in rows if r["backend"].startswith("ab-")]
if ab:
    label = a.compare_label or "the earlier build"
    p(f"## PUT, PATCH and member changes against {label}, alternated\n")
    p("Each build on a database of its own schema, seeded alike; rounds alternate the earlier "
      "build and this one (`BENCH_AB_OLD`), 16 connections, so both see the same machine. "
      "Medians of the rounds.\n")
    p("| scenario | rounds | earlier req/s (each round) | this build req/s (each round) | "
      "ratio of medians | earlier p99 ms | this build p99 ms |")
    p("|---|---|---|---|---|---|---|")
    alternated_rows("ab-old-", "ab-new-")
    p("")
if a.notes and os.path.exists(a.notes):
    p(open(a.notes).read().rstrip() + "\n")
print("\n".join(out))
