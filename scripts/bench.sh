#!/usr/bin/env bash
# scimd benchmark harness: one command, loopback only, stops by itself, kills what it started.
#
#   scripts/bench.sh                                     # 100,000 users, 15 s per scenario
#   BENCH_USERS=10000 BENCH_SECONDS=5 scripts/bench.sh   # a quick run
#
# Measures scimd (release build, Postgres, rate limiter on with a limit the load never reaches)
# against ceilings measured in the same run, on the same database, at the same connection
# counts: pgbench custom scripts (a primary-key select and a one-row update) and "floor"
# (examples/floor.rs: axum + sqlx, one primary-key select per request; and its write floor,
# pgbench_user_write's two statements behind an HTTP PATCH). Also: cold start on an
# empty SQLite file, and the read scenarios against a SQLite-backed scimd.
# Writes benchmarks/results.csv and regenerates BENCHMARKS.md (observations that go with the
# numbers: scripts/bench/notes.md). Where the Postgres server preloads pg_stat_statements, also
# benchmarks/statements.csv: what each statement cost Postgres in each scenario.
#
# Environment:
#   BENCH_USERS        users seeded (default 100000)
#   BENCH_SECONDS      seconds per scenario and connection count (default 15)
#   BENCH_CONNECTIONS  connection counts (default "16 64")
#   BENCH_SQLITE       1 (default) to also run the read scenarios on SQLite, 0 to skip
#   BENCH_GROW         other user counts for the "how it grows" table (default
#                      "10000 1000000"; the 1M-user database takes about 7 minutes to seed;
#                      "10000" for a shorter run; "" for none); each, and BENCH_USERS again
#                      on a fresh database, gets GET, filter, list and PATCH at 16
#                      connections, every scenario at each size back to back
#   BENCH_PG           server URL without database (default postgres://postgres@127.0.0.1:5432)
#   BENCH_KEEP_DB      1 to keep database scimd_bench afterwards (default: dropped)
#   BENCH_RAW          a file to keep wrk's and pgbench's raw output in
#   BENCH_LOGS         a directory to keep the servers' logs in
#   BENCH_COMPARE      results.csv of an earlier build measured in this session: BENCHMARKS.md
#                      then has a table of this build against it (BENCH_COMPARE_LABEL names it)
#   BENCH_AB_OLD       the release directory of an earlier build (its scimd and
#                      examples/bench_seed): PUT and PATCH are then measured against it
#                      alternately, BENCH_AB_ROUNDS rounds (default 3) at 16 connections,
#                      each build on a database of its own schema seeded alike; BENCHMARKS.md
#                      gets the medians and their ratio (BENCH_COMPARE_LABEL names the build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

USERS="${BENCH_USERS:-100000}"
SECS="${BENCH_SECONDS:-15}"
CONNS="${BENCH_CONNECTIONS:-16 64}"
RUN_SQLITE="${BENCH_SQLITE:-1}"
GROW="${BENCH_GROW-10000 1000000}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="scimd_bench"
DB_URL="$PG/$DB"
THREADS=2 # wrk and pgbench threads: the machine has 2 cores
CSV="$ROOT/benchmarks/results.csv"
GROWTH_CSV="$ROOT/benchmarks/growth.csv"
STATEMENTS_CSV="$ROOT/benchmarks/statements.csv"
START_TIME="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

die() {
  echo "bench.sh: $*" >&2
  exit 1
}
case "$PG" in
  postgres://*@127.0.0.1:* | postgres://*@localhost:* | postgresql://*@127.0.0.1:*) ;;
  *) die "BENCH_PG must point at 127.0.0.1 (loopback only): $PG" ;;
esac

WORK="$(mktemp -d /tmp/scimd-bench.XXXXXX)"
# The run uses its own copy of the helpers, so edits to the tree during a run do not affect it.
cp -r scripts/bench "$WORK/tools"
PIDS=()
declare -A GROW_DBS # users -> the "how it grows" database of that size
DB_CREATED=0
drop_grow_dbs() {
  for grow_db in "${GROW_DBS[@]}"; do
    psql "$PG/postgres" -qc "drop database if exists $grow_db with (force)" >/dev/null 2>&1 || true
  done
  GROW_DBS=()
}
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$DB_CREATED" = 1 ] && [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
    psql "$PG/postgres" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    drop_grow_dbs
  fi
  # BENCH_LOGS: a directory to keep the servers' logs in (they go with the run otherwise).
  [ -z "${BENCH_LOGS:-}" ] || { mkdir -p "$BENCH_LOGS" && cp "$WORK"/*.log "$BENCH_LOGS"/ 2>/dev/null; } || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
if ! command -v wrk >/dev/null; then
  echo "== installing wrk (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } ||
    die "wrk is required and could not be installed with apt-get (Debian package 'wrk')"
  command -v wrk >/dev/null || die "wrk is still missing after apt-get install wrk"
fi
for tool in pgbench psql python3 curl cargo; do
  command -v "$tool" >/dev/null ||
    die "$tool is required (pgbench and psql: Debian packages postgresql-15 / postgresql-client)"
done
psql "$PG/postgres" -qAtc "select 1" >/dev/null 2>&1 ||
  die "no Postgres at $PG (user postgres, trust auth): start it, or set BENCH_PG"

# Waits (bounded) until URL answers 200.
wait_200() { # url seconds
  local deadline=$((SECONDS + $2))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "$1 did not answer 200 within $2 s"
    sleep 0.05
  done
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# After a database is seeded: statistics and visibility as autovacuum would leave them, then a
# checkpoint, so that the load's pages (and those the vacuum dirtied) are written out before
# the first scenario instead of during it. Without it the run's first write ceiling shared
# the cores and the disk with that write-out: pgbench_user_write ran below the write floor
# that sends it the same statements (3,779 against 4,237 req/s, 2026-12-07 15:02).
settle_seeded() { # url
  psql "$1" -qc "vacuum analyze" -c "checkpoint" >/dev/null
}

# ---------------------------------------------------------------- build
echo "== build (release)"
cargo build --release --quiet --examples --bin scimd
TARGET="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
BIN="$TARGET/scimd"

# ---------------------------------------------------------------- cold start
echo "== cold start on an empty SQLite file (best of 5)"
COLD_MS="$(python3 "$WORK/tools/coldstart.py" "$BIN" "$WORK" 5)"
echo "  cold start: $COLD_MS ms"

# ---------------------------------------------------------------- Postgres + seed
echo "== database $DB, $USERS users"
psql "$PG/postgres" -qc "drop database if exists $DB with (force)" -c "create database $DB" \
  >/dev/null 2>&1
DB_CREATED=1
export SCIMD_JWT_SECRET="bench-only-secret-bench-only-secret-0123456789"
# Logging as in production: one JSON access-log line per request (to a file in the run's
# directory), so its cost is in every figure.
export SCIMD_BOOTSTRAP=false RUST_LOG=info SCIMD_LOG_FORMAT=json
# The limiter stays on (its cost is in every request) with a limit the load never reaches.
export SCIMD_RATE_LIMIT_PER_MINUTE=100000000
# The bench is one tenant using the whole server: its concurrency bound per organization
# (default 4, for fairness between tenants) is set to the pool's 16 connections, as the
# pgbench ceilings run 16 clients; it stays on, at a level the load never waits at.
export SCIMD_ORG_CONCURRENCY=16
DATABASE_URL="$DB_URL" "$BIN" org create bench >/dev/null
TOKEN="$(DATABASE_URL="$DB_URL" "$BIN" key create --org bench)"
mkdir -p "$WORK/pg"
"$TARGET/examples/bench_seed" "$DB_URL" bench "$USERS" "$WORK/pg"
# pgbench picks ids by number from this table.
psql "$DB_URL" -qc "create table bench_ids (n serial primary key, id uuid not null)" >/dev/null
cut -d' ' -f1 "$WORK/pg/users.txt" | psql "$DB_URL" -qc "copy bench_ids (id) from stdin" >/dev/null
settle_seeded "$DB_URL"
# Each statement's cost in each scenario, where the server preloads the module (a setting
# that takes a restart, so the run does not change it): the report's statement-by-statement
# table. Its own overhead is on every scenario alike, the ceilings included.
STATEMENTS=""
if [ "$(psql "$DB_URL" -qAtc "select 1 from pg_settings where name = 'shared_preload_libraries'
      and setting ~ '(^|[ ,])pg_stat_statements($|[ ,])'")" = 1 ]; then
  psql "$DB_URL" -qc "create extension if not exists pg_stat_statements" >/dev/null
  STATEMENTS="$WORK/statements.csv"
else
  echo "  (no per-statement profile: add pg_stat_statements to the server's shared_preload_libraries)"
fi
# Every key of a user includes its organization: the scripts name it, as scimd does.
ORG_ID="$(psql "$DB_URL" -qAtc "select id from organizations where slug = 'bench'")"

cat >"$WORK/select.sql" <<SQL
\set n random(1, $USERS)
select doc from users where org_id = '$ORG_ID' and id = (select id from bench_ids where n = :n);
SQL
cat >"$WORK/update.sql" <<SQL
\set n random(1, $USERS)
update users set modified_at = modified_at + 1
  where org_id = '$ORG_ID' and id = (select id from bench_ids where n = :n);
SQL
# Diagnostic ceilings for the writes' shape: scimd's limiter statement on one bucket (as one
# API key makes it; own connections with synchronous_commit off, as scimd's limiter pool), and
# an update that every client makes to the same single row (as member changes lock the group).
psql "$DB_URL" -qc "create table bench_hot (id int primary key, v bigint not null)" \
  -c "insert into bench_hot values (1, 0)" >/dev/null
cat >"$WORK/limiter.sql" <<'SQL'
\set now 1
insert into rate_limit_buckets as b (bucket, tat_ns, granted) values ('bench', 0, 1) on conflict (bucket) do update set tat_ns = greatest(b.tat_ns, :now) + least(1, (60000000000 - (greatest(b.tat_ns, :now) - :now)) / 1) * 1, granted = least(1, (60000000000 - (greatest(b.tat_ns, :now) - :now)) / 1) where (60000000000 - (greatest(b.tat_ns, :now) - :now)) / 1 >= 1 returning tat_ns, granted;
SQL
# The shape of scimd's PUT/PATCH on Postgres, with no server in between: read the row, then
# one statement that writes the whole row back (document as `json` and its folded copy as
# `jsonb`, sent as parameters) only if it is still at the version read, appends the change-log entry (17
# columns, the request's data as jsonb) for it, and returns the written row with the user's
# groups (a column of the row), as scimd's statement does (the answer is rendered from it).
# Colons in the data would be pgbench variables, hence the dashes; the length is what counts.
cat >"$WORK/user_write.sql" <<SQL
\\set n random(1, $USERS)
select id, doc::text as doc, version from users
  where org_id = '$ORG_ID' and id = (select id from bench_ids where n = :n) \\gset
with written as (update users set doc = :doc::json, doc_folded = :doc::jsonb,
    modified_at = modified_at + 1, version = version + 1
  where org_id = '$ORG_ID' and id = :id and version = :version
  returning id, org_id, user_name, external_id, active, doc, password_hash, created_at,
    modified_at, version, users.member_of as groups),
logged as (insert into changes (org_id, position, at, resource_type, resource_id, external_id,
    operation, activation, attributes, version, key_id, key_name, request_id, client_addr,
    user_agent, memberships, data)
  select org_id, pg_current_xact_id()::text::bigint * 1024, 1796407888392, 'User', id,
    external_id, 'patch', null, '["displayName"]', version, '01a2423f-e79c-700b-b12d-a7fdc77f460a',
    'default', 'f0c2b9a4-3c55-4c86-9f1c-5b9a7e1d2a33', '127.0.0.1', 'wrk/4.2', null,
    '{"schemas":["urn-ietf-params-scim-api-messages-2.0-PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Bench 12345"}]}'
  from written)
select * from written;
SQL
cat >"$WORK/hot_row.sql" <<'SQL'
update bench_hot set v = v + 1 where id = 1;
SQL

# ---------------------------------------------------------------- servers
APP_PORT="$(free_port)"
DATABASE_URL="$DB_URL" SCIMD_LISTEN="127.0.0.1:$APP_PORT" "$BIN" serve 2>"$WORK/scimd.log" &
SCIMD_PID=$!
PIDS+=("$SCIMD_PID")
FLOOR_PORT="$(free_port)"
"$TARGET/examples/floor" "$DB_URL" "$FLOOR_PORT" 2>"$WORK/floor.log" &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
FIRST_ID="$(head -1 "$WORK/pg/users.txt" | cut -d' ' -f1)"
wait_200 "http://127.0.0.1:$APP_PORT/healthz" 30
wait_200 "http://127.0.0.1:$FLOOR_PORT/floor/$FIRST_ID" 30
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$APP_PORT/scim/v2/Users/$FIRST_ID")"
[ "$code" = 200 ] || die "GET /scim/v2/Users/$FIRST_ID answered $code, expected 200"
sleep 1
IDLE_RSS="$(rss_mb "$SCIMD_PID")"
echo "  scimd pid $SCIMD_PID idle RSS $IDLE_RSS MB; floor pid $FLOOR_PID"

: >"$WORK/results.csv"
RAW="$WORK/raw.txt"
# Vacuums a database before a scenario on it, as autovacuum would have done by then. This
# machine's Postgres runs with `autovacuum = off` (its conf.d/90-ci.conf, set for tests),
# where production runs with it on. Without it, every write scenario leaves the users' heap
# pages without their visibility-map bits for the rest of the run, and every later
# index-only scan (the deep page's walk past its offset) reads the heap: 51,579 heap fetches
# for a page at offset 50,000, and 87 deep pages a second against 429 vacuumed (by hand,
# 2026-12-07).
# NO_SETTLE=1 skips it, for a scenario started beside another that has vacuumed already.
settle_db() { # url
  [ "${NO_SETTLE:-0}" = 1 ] || psql "$1" -qc "vacuum" >/dev/null
}
run_wrk() { # backend scenario connections port pid datadir [csv]
  local backend=$1 scenario=$2 c=$3 port=$4 pid=$5 data=$6 csv=${7:-$WORK/results.csv} pgurl=""
  [ "$backend" = sqlite ] || pgurl="${RUN_PG_URL:-$DB_URL}"
  [ -z "$pgurl" ] || settle_db "$pgurl"
  # Statement by statement for the rows of results.csv (the main table, and the phases that add
  # theirs under their own labels), not for the growth and A/B files.
  local stmts=""
  [ -z "$pgurl" ] || [ "$csv" != "$WORK/results.csv" ] || stmts="$STATEMENTS"
  SCENARIO="$scenario" TOKEN="$TOKEN" DATA="$data" THREADS="$THREADS" CONNECTIONS="$c" \
    python3 "$WORK/tools/measure.py" --csv "$csv" --backend "$backend" --scenario "$scenario" \
    --connections "$c" --kind wrk --pid "$pid" ${pgurl:+--pg-url "$pgurl"} --raw "$RAW" \
    ${stmts:+--statements "$stmts"} -- \
    timeout $((SECS + 60)) wrk -t"$THREADS" -c"$c" -d"${SECS}s" --timeout 10s --latency \
    -s "$WORK/tools/scimd.lua" "http://127.0.0.1:$port"
}
run_pgbench() { # scenario connections
  local clients=$2
  # Plain TCP, as scimd and the floor connect (sqlx is built without TLS): libpq's default
  # (`sslmode=prefer`) would encrypt every round trip on loopback, which lowered the ceilings
  # (pgbench_user_write by about a sixth, measured 2026-12-06).
  # The limiter has its own pool of 4 connections in scimd, so its ceiling is measured at 4.
  [ "$1" != limiter ] || clients=4
  settle_db "$DB_URL"
  python3 "$WORK/tools/measure.py" --csv "$WORK/results.csv" --backend postgres \
    --scenario "pgbench_$1" --connections "$2" --kind pgbench --pg-url "$DB_URL" \
    --pgbench-log-prefix "$WORK/pgblog" --raw "$RAW" ${STATEMENTS:+--statements "$STATEMENTS"} -- \
    timeout $((SECS + 60)) pgbench -n -M prepared -c "$clients" -j "$THREADS" -T "$SECS" \
    -f "$WORK/$1.sql" --log --log-prefix "$WORK/pgblog" "$DB_URL?sslmode=disable"
}

echo "== warm-up (not recorded)"
SECS_SAVED=$SECS
SECS=2
run_wrk postgres get_user 16 "$APP_PORT" "$SCIMD_PID" "$WORK/pg" "$WORK/warmup.csv" >/dev/null
run_wrk postgres floor 16 "$FLOOR_PORT" "$FLOOR_PID" "$WORK/pg" "$WORK/warmup.csv" >/dev/null
SECS=$SECS_SAVED

export BENCH_N_USERS="$USERS" # measure.py's users column
READS="get_user filter_user_name list_first list_page"
WRITES="put_user patch_user member_small member_big"
for c in $CONNS; do
  echo "== Postgres, $c connections, ${SECS} s each"
  run_pgbench select "$c"
  run_pgbench update "$c"
  run_pgbench user_write "$c"
  PGOPTIONS="-c synchronous_commit=off" run_pgbench limiter "$c"
  run_pgbench hot_row "$c"
  # The floor's CPU and RSS go in the server columns of its row.
  run_wrk postgres floor "$c" "$FLOOR_PORT" "$FLOOR_PID" "$WORK/pg"
  run_wrk postgres floor_statement "$c" "$FLOOR_PORT" "$FLOOR_PID" "$WORK/pg"
  run_wrk postgres floor_write "$c" "$FLOOR_PORT" "$FLOOR_PID" "$WORK/pg"
  for scenario in $READS $WRITES; do
    run_wrk postgres "$scenario" "$c" "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
  done
done

# ---------------------------------------------------------------- writes with a push stream
# PUT and PATCH without and with one push stream (RFC 9967 events) to a receiver on loopback
# that measures each SET's commit-to-arrival time (`toe` to receipt), over BENCH_STREAM_ROUNDS
# rounds (default 4) so both see the same machine: odd rounds run without the stream first,
# even rounds with it first, so a drift over the run (the log and the tables grow) weighs on
# both alike. After each load with the stream, how many events were still on their way when
# it stopped, and how long they took to drain. Each round's stream is new (it starts at the
# head of the log).
echo "== Postgres, PUT and PATCH without and with one push stream, alternated, 16 connections"
RECEIVER_PORT="$(free_port)"
"$TARGET/examples/event_receiver" "$RECEIVER_PORT" 2>"$WORK/receiver.log" &
RECEIVER_PID=$!
PIDS+=("$RECEIVER_PID")
wait_200 "http://127.0.0.1:$RECEIVER_PORT/stats" 10
received() { curl -s "http://127.0.0.1:$RECEIVER_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
EXPECTED=0 MOST_IN_FLIGHT=0 DRAIN_SECS=0
without_stream() { # round
  for scenario in put_user patch_user; do
    run_wrk "stream-off-$1" "$scenario" 16 "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
  done
}
with_stream() { # round
  STREAM_ID="$(DATABASE_URL="$DB_URL" "$BIN" stream create --org bench \
    --push "http://127.0.0.1:$RECEIVER_PORT/")"
  sleep 3 # the server takes the new stream's lease within a second
  ENTRIES_BEFORE="$(psql "$DB_URL" -qAtc "select count(*) from changes")"
  for scenario in put_user patch_user; do
    run_wrk "stream-on-$1" "$scenario" 16 "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
  done
  ENTRIES_AFTER="$(psql "$DB_URL" -qAtc "select count(*) from changes")"
  EXPECTED=$((EXPECTED + ENTRIES_AFTER - ENTRIES_BEFORE))
  # Can be below zero: a new stream starts at the head of the log, which a transaction still
  # open at its creation (a lease renewal, say) holds a few entries back.
  IN_FLIGHT=$((EXPECTED - $(received)))
  [ "$IN_FLIGHT" -le "$MOST_IN_FLIGHT" ] || MOST_IN_FLIGHT=$IN_FLIGHT
  DRAIN_START=$SECONDS
  while [ "$(received)" -lt "$EXPECTED" ] && [ $((SECONDS - DRAIN_START)) -lt 120 ]; do sleep 0.2; done
  [ $((SECONDS - DRAIN_START)) -le "$DRAIN_SECS" ] || DRAIN_SECS=$((SECONDS - DRAIN_START))
  DATABASE_URL="$DB_URL" "$BIN" stream delete "$STREAM_ID"
  echo "  round $1: $IN_FLIGHT events on their way when the load stopped"
}
for round in $(seq "${BENCH_STREAM_ROUNDS:-4}"); do
  if [ $((round % 2)) = 1 ]; then
    without_stream "$round"
    with_stream "$round"
  else
    with_stream "$round"
    without_stream "$round"
  fi
done
curl -s "http://127.0.0.1:$RECEIVER_PORT/stats" >"$WORK/stream_stats.json"
{
  echo "EXPECTED=$EXPECTED"
  echo "MOST_IN_FLIGHT=$MOST_IN_FLIGHT"
  echo "DRAIN_SECONDS=$DRAIN_SECS"
} >"$WORK/stream.env"
echo "  stream: $EXPECTED events expected, at most $MOST_IN_FLIGHT on their way when a load stopped, drained within ${DRAIN_SECS} s; $(cat "$WORK/stream_stats.json")"
kill "$RECEIVER_PID" 2>/dev/null || true
# ---------------------------------------------------------------- Bulk against single POSTs
# Users created per second by single POSTs (16 connections) and by Bulk requests of
# BULK_OPS (1,000) POST operations each (4 connections), alternated over BENCH_BULK_ROUNDS
# rounds (default 2) on the same server and database.
echo "== Postgres, users created: single POSTs (16 connections) and Bulk (4 connections)"
export BULK_OPS="${BULK_OPS:-1000}"
for round in $(seq "${BENCH_BULK_ROUNDS:-2}"); do
  run_wrk "bulk-single-$round" create_user 16 "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
  run_wrk "bulk-bulk-$round" bulk_create 4 "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
done
# ---------------------------------------------------------------- two processes, one Postgres
# Scale-out on one machine: a second scimd on the same database, each process behind half
# the connections (8 + 8), against the first alone at 16, alternated over
# BENCH_TWO_ROUNDS rounds (default 2). Both use the same key, so they share its limit in
# Postgres. On two cores the point is correctness and overhead, not more throughput.
echo "== Postgres, two scimd processes on one database (8 + 8 connections) against one (16)"
APP2_PORT="$(free_port)"
DATABASE_URL="$DB_URL" SCIMD_LISTEN="127.0.0.1:$APP2_PORT" "$BIN" serve 2>"$WORK/scimd2.log" &
SCIMD2_PID=$!
PIDS+=("$SCIMD2_PID")
wait_200 "http://127.0.0.1:$APP2_PORT/healthz" 30
for round in $(seq "${BENCH_TWO_ROUNDS:-2}"); do
  for scenario in get_user patch_user; do
    run_wrk "two-one-$round" "$scenario" 16 "$APP_PORT" "$SCIMD_PID" "$WORK/pg"
    settle_db "$DB_URL"
    NO_SETTLE=1 run_wrk "two-a-$round" "$scenario" 8 "$APP_PORT" "$SCIMD_PID" "$WORK/pg" &
    first=$!
    NO_SETTLE=1 run_wrk "two-b-$round" "$scenario" 8 "$APP2_PORT" "$SCIMD2_PID" "$WORK/pg"
    wait "$first"
  done
done
kill "$SCIMD2_PID" 2>/dev/null || true
wait "$SCIMD2_PID" 2>/dev/null || true
PEAK_RSS_PG="$(awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$SCIMD_PID/status")"
GROUP_CHECK="$(psql "$DB_URL" -qAtc "select (select count(*) from group_members m join groups g
  on g.id = m.group_id where g.display_name = 'bench-big') || ' ' || (select count(*) from
  group_members m join groups g on g.id = m.group_id where g.display_name = 'bench-small')" \
  2>/dev/null || echo "? ?")"
kill "$FLOOR_PID" 2>/dev/null || true

# ---------------------------------------------------------------- console pages
# Each console page's time at $USERS users and CONSOLE_ENTRIES (default 1,000,000) change-log
# entries in the organization (added straight into the log, spread over the last 23 days,
# at negative positions: below every real one, so they can never collide)
# with 30 days of hourly activity counts: signed in with an admin key, each page fetched
# CONSOLE_REQUESTS (20) times one after another; the median and slowest time to the last byte.
CONSOLE_ENTRIES="${BENCH_CONSOLE_ENTRIES:-1000000}"
CONSOLE_REQUESTS="${BENCH_CONSOLE_REQUESTS:-20}"
echo "== console pages, $USERS users, $CONSOLE_ENTRIES change-log entries"
psql "$DB_URL" -qc "insert into changes (org_id, position, at, resource_type, resource_id,
    operation, activation, attributes, version, key_id, key_name, request_id, client_addr,
    user_agent, data)
  select o.id, g - $CONSOLE_ENTRIES - 1, (extract(epoch from now()) * 1000)::bigint - ($CONSOLE_ENTRIES - g) * 2000,
    'User', b.id, (array['create', 'put', 'patch', 'delete'])[1 + g % 4],
    case when g % 10 = 0 then 'deactivated' end, '[\"title\", \"active\"]', 2, null, 'okta',
    md5(g::text), '127.0.0.1', 'Okta SCIM Client 1.0',
    jsonb_build_object('title', 'Engineer ' || g)
  from organizations o, generate_series(1, $CONSOLE_ENTRIES) g
  join bench_ids b on b.n = 1 + g % $USERS
  where o.slug = 'bench'" >/dev/null
psql "$DB_URL" -qc "insert into org_activity (org_id, hour, kind, label, count)
  select o.id, h, k.kind, k.label, 1 + (h * 7 + length(k.label)) % 200
  from organizations o,
    generate_series((extract(epoch from now()) / 3600)::bigint - 719,
                    (extract(epoch from now()) / 3600)::bigint) h,
    (values ('write', 'PUT'), ('write', 'PATCH'), ('change', 'put'), ('change', 'patch'),
            ('rejected', 'invalidValue'), ('rejected', 'uniqueness'), ('throttled', ''))
      as k (kind, label)
  where o.slug = 'bench'
  on conflict (org_id, hour, kind, label) do update set count = excluded.count" >/dev/null
psql "$DB_URL" -qc "vacuum analyze changes" >/dev/null
ADMIN_TOKEN="$(DATABASE_URL="$DB_URL" "$BIN" admin-key create --name bench)"
JAR="$WORK/console.jar"
CSRF="$(curl -s -c "$JAR" "http://127.0.0.1:$APP_PORT/admin/sign-in" |
  grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)"
curl -s -o /dev/null -b "$JAR" -c "$JAR" --data-urlencode "key=$ADMIN_TOKEN" \
  --data-urlencode "csrf=$CSRF" "http://127.0.0.1:$APP_PORT/admin/sign-in"
echo "page,requests,median_ms,max_ms,entries" >"$WORK/console.csv"
for page in "overview /admin" "organization /admin/orgs/bench" \
  "change log /admin/orgs/bench/changes" \
  "change log, older page /admin/orgs/bench/changes?before=500000" \
  "change log, patches of a day /admin/orgs/bench/changes?operation=patch&since=24h" \
  "rejected writes /admin/orgs/bench/changes?failed=1" \
  "user /admin/orgs/bench/resources/$FIRST_ID"; do
  name="${page% *}" path="${page##* }"
  code="$(curl -s -o /dev/null -w '%{http_code}' -b "$JAR" "http://127.0.0.1:$APP_PORT$path")"
  [ "$code" = 200 ] || die "console page $path answered $code"
  for _ in $(seq "$CONSOLE_REQUESTS"); do
    curl -s -o /dev/null -b "$JAR" -w '%{time_total}\n' "http://127.0.0.1:$APP_PORT$path"
  done | python3 -c "
import statistics, sys
t = [float(x) * 1000 for x in sys.stdin.read().split()]
print(f'\"$name\",{len(t)},{statistics.median(t):.2f},{max(t):.2f},$CONSOLE_ENTRIES')" \
    >>"$WORK/console.csv"
  tail -1 "$WORK/console.csv"
done

# ---------------------------------------------------------------- a 100,000-member group
# A group with every seeded user as a member (BENCH_BIG_MEMBERS, default all $USERS), read
# through each path while the server's peak RSS is watched: the kernel's high-water mark is
# reset (clear_refs 5) before each path, and the growth is its peak over the resident size
# just before. Target (issue 20): every path ≤ 50 MB.
BIG_MEMBERS="${BENCH_BIG_MEMBERS:-$USERS}"
echo "== a group of $BIG_MEMBERS members, peak RSS growth per read path"
BIG_GROUP="$(psql "$DB_URL" -qAtc "insert into groups (id, org_id, display_name,
    display_name_folded, doc, created_at, modified_at, version, doc_folded)
  values (gen_random_uuid(), '$ORG_ID', 'bench-huge', 'bench-huge',
    '{\"displayName\": \"bench-huge\"}', 0, 0, 1, '{\"displayName\": \"bench-huge\"}')
  returning id" | head -1)"
psql "$DB_URL" -qc "insert into group_members (org_id, group_id, user_id, created_at)
  select '$ORG_ID', '$BIG_GROUP', id, n from bench_ids where n <= $BIG_MEMBERS" >/dev/null
psql "$DB_URL" -qc "vacuum analyze group_members" >/dev/null
AUTH="Authorization: Bearer $TOKEN"
BASE="http://127.0.0.1:$APP_PORT/scim/v2"
FILTER="group.value%20eq%20%22$BIG_GROUP%22"
echo "path,requests,seconds,rss_before_mb,growth_mb,members" >"$WORK/members.csv"
measure_members() { # name command...
  local name=$1 start before peak
  shift
  echo 5 >"/proc/$SCIMD_PID/clear_refs" 2>/dev/null || true
  before="$(rss_mb "$SCIMD_PID")"
  start=$(date +%s.%N)
  local requests
  requests="$("$@")"
  peak="$(awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$SCIMD_PID/status")"
  echo "\"$name\",$requests,$(echo "$(date +%s.%N) - $start" | bc),$before,$(echo "$peak - $before" | bc),$BIG_MEMBERS" \
    >>"$WORK/members.csv"
  tail -1 "$WORK/members.csv"
}
get_group() { curl -s -o /dev/null -H "$AUTH" "$BASE/Groups/$BIG_GROUP"; echo 1; }
list_groups() { curl -s -o /dev/null -H "$AUTH" "$BASE/Groups?count=100"; echo 1; }
cursor_pages() { # every membership of the group, 1,000 per page, by cursor
  local cursor="" n=0 body
  while :; do
    body="$(curl -s -H "$AUTH" "$BASE/GroupMembers?count=1000&cursor=$cursor&filter=$FILTER")"
    n=$((n + 1))
    cursor="$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("nextCursor",""))')"
    [ -n "$cursor" ] || break
  done
  echo "$n"
}
index_pages() { # the first 20 pages of 1,000 by startIndex
  local n
  for n in $(seq 0 19); do
    curl -s -o /dev/null -H "$AUTH" \
      "$BASE/GroupMembers?count=1000&startIndex=$((n * 1000 + 1))&filter=$FILTER"
  done
  echo 20
}
member_patch() { # one remove and one add, as an IdP sends them
  local outsider
  outsider="$(sed -n 1p "$WORK/pg/outsiders.txt" | cut -d' ' -f1)"
  for op in remove add; do
    curl -s -o /dev/null -X PATCH -H "$AUTH" -H 'Content-Type: application/scim+json' \
      -d "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":\"$op\",\"path\":\"members\",\"value\":[{\"value\":\"$outsider\"}]}]}" \
      "$BASE/Groups/$BIG_GROUP"
  done
  echo 2
}
remove_all() { # every member removed in one PATCH (the group is emptied)
  curl -s -o /dev/null -X PATCH -H "$AUTH" -H 'Content-Type: application/scim+json' \
    -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members"}]}' \
    "$BASE/Groups/$BIG_GROUP"
  echo 1
}
measure_members "GET /Groups/{id}" get_group
measure_members "GET /Groups (a page with the group)" list_groups
measure_members "GET /GroupMembers, every page by cursor" cursor_pages
measure_members "GET /GroupMembers, 20 pages by startIndex" index_pages
measure_members "PATCH remove and add one member" member_patch
measure_members "PATCH remove all members" remove_all

# ---------------------------------------------------------------- how it grows
# The read scenarios and PATCH at every size (the main run's $USERS too, on a fresh database:
# by now the main one holds the users the create and Bulk scenarios added), each size in its
# own database with its own server, at 16 connections. Every scenario runs at each size back
# to back, so a size's figures are not a quarter of an hour and the machine's drift apart
# from another's.
# The main server and the floor are done: stopped, so that four servers' pools fit within
# Postgres's max_connections (100).
kill "$SCIMD_PID" "$FLOOR_PID" 2>/dev/null || true
wait "$SCIMD_PID" "$FLOOR_PID" 2>/dev/null || true
: >"$WORK/growth.csv"
GROW_SIZES="$(printf '%s\n' $GROW "$USERS" | sort -nu | paste -sd' ')"
declare -A GROW_PORTS GROW_PIDS GROW_TOKENS
if [ "$(echo $GROW_SIZES | wc -w)" -gt 1 ]; then
  for n in $GROW_SIZES; do
    echo "== how it grows: seeding $n users"
    grow_db="scimd_bench_grow_$n"
    psql "$PG/postgres" -qc "drop database if exists $grow_db with (force)" \
      -c "create database $grow_db" >/dev/null 2>&1
    GROW_DBS[$n]="$grow_db"
    DATABASE_URL="$PG/$grow_db" "$BIN" org create bench >/dev/null
    GROW_TOKENS[$n]="$(DATABASE_URL="$PG/$grow_db" "$BIN" key create --org bench)"
    mkdir -p "$WORK/grow-$n"
    "$TARGET/examples/bench_seed" "$PG/$grow_db" bench "$n" "$WORK/grow-$n"
    settle_seeded "$PG/$grow_db"
    GROW_PORTS[$n]="$(free_port)"
    DATABASE_URL="$PG/$grow_db" SCIMD_LISTEN="127.0.0.1:${GROW_PORTS[$n]}" "$BIN" serve \
      2>>"$WORK/scimd-grow.log" &
    GROW_PIDS[$n]=$!
    PIDS+=("${GROW_PIDS[$n]}")
    wait_200 "http://127.0.0.1:${GROW_PORTS[$n]}/healthz" 30
  done
  for scenario in get_user filter_user_name list_first list_page patch_user; do
    echo "== how it grows: $scenario at $GROW_SIZES users"
    for n in $GROW_SIZES; do
      TOKEN="${GROW_TOKENS[$n]}" BENCH_N_USERS="$n" RUN_PG_URL="$PG/${GROW_DBS[$n]}" \
        run_wrk postgres "$scenario" 16 "${GROW_PORTS[$n]}" "${GROW_PIDS[$n]}" \
        "$WORK/grow-$n" "$WORK/growth.csv"
    done
  done
  for n in $GROW_SIZES; do kill "${GROW_PIDS[$n]}" 2>/dev/null || true; done
  for n in $GROW_SIZES; do wait "${GROW_PIDS[$n]}" 2>/dev/null || true; done
  drop_grow_dbs
fi

# ---------------------------------------------------------------- SQLite reads
SQLITE_IDLE_RSS=""
if [ "$RUN_SQLITE" = 1 ]; then
  echo "== SQLite, $USERS users, read scenarios"
  SQLITE_URL="sqlite://$WORK/bench.db"
  unset SCIMD_JWT_SECRET # SQLite keeps a generated secret in the database
  DATABASE_URL="$SQLITE_URL" "$BIN" org create bench >/dev/null
  SQLITE_TOKEN="$(DATABASE_URL="$SQLITE_URL" "$BIN" key create --org bench)"
  mkdir -p "$WORK/sqlite"
  "$TARGET/examples/bench_seed" "$SQLITE_URL" bench "$USERS" "$WORK/sqlite"
  SQLITE_PORT="$(free_port)"
  DATABASE_URL="$SQLITE_URL" SCIMD_LISTEN="127.0.0.1:$SQLITE_PORT" "$BIN" serve \
    2>>"$WORK/scimd-sqlite.log" &
  SQLITE_PID=$!
  PIDS+=("$SQLITE_PID")
  wait_200 "http://127.0.0.1:$SQLITE_PORT/healthz" 30
  sleep 1
  SQLITE_IDLE_RSS="$(rss_mb "$SQLITE_PID")"
  TOKEN_PG="$TOKEN"
  TOKEN="$SQLITE_TOKEN"
  for c in $CONNS; do
    for scenario in $READS; do
      run_wrk sqlite "$scenario" "$c" "$SQLITE_PORT" "$SQLITE_PID" "$WORK/sqlite"
    done
  done
  kill "$SQLITE_PID" 2>/dev/null || true
  TOKEN="$TOKEN_PG"
fi

# ---------------------------------------------------------------- A/B against an earlier build
# Rates swing between runs by more than most changes move them (the disk's flush rate above
# all, for writes), so an earlier build is compared round by round, alternating, in one run.
if [ -n "${BENCH_AB_OLD:-}" ]; then
  AB_USERS=$((USERS < 100000 ? USERS : 100000))
  TOKEN_BEFORE_AB="$TOKEN"
  export SCIMD_JWT_SECRET="bench-only-secret-bench-only-secret-0123456789"
  echo "== A/B: PUT, PATCH and member changes, this build against $BENCH_AB_OLD, ${BENCH_AB_ROUNDS:-3} rounds"
  for build in old new; do
    bin="$BIN" seed="$TARGET/examples/bench_seed"
    [ "$build" = new ] || { bin="$BENCH_AB_OLD/scimd"; seed="$BENCH_AB_OLD/examples/bench_seed"; }
    url="$PG/scimd_bench_ab_$build"
    psql "$PG/postgres" -qc "drop database if exists scimd_bench_ab_$build with (force)" \
      -c "create database scimd_bench_ab_$build" >/dev/null 2>&1
    DATABASE_URL="$url" "$bin" org create bench >/dev/null
    mkdir -p "$WORK/ab-$build"
    DATABASE_URL="$url" "$bin" key create --org bench >"$WORK/ab-$build/token"
    "$seed" "$url" bench "$AB_USERS" "$WORK/ab-$build" >/dev/null
    settle_seeded "$url"
  done
  for round in $(seq "${BENCH_AB_ROUNDS:-3}"); do
    for build in old new; do
      bin="$BIN"
      [ "$build" = new ] || bin="$BENCH_AB_OLD/scimd"
      url="$PG/scimd_bench_ab_$build"
      port="$(free_port)"
      DATABASE_URL="$url" SCIMD_LISTEN="127.0.0.1:$port" "$bin" serve 2>>"$WORK/ab.log" &
      pid=$!
      PIDS+=("$pid")
      wait_200 "http://127.0.0.1:$port/healthz" 30
      for scenario in put_user patch_user member_big; do
        TOKEN="$(cat "$WORK/ab-$build/token")" RUN_PG_URL="$url" \
          run_wrk "ab-$build-$round" "$scenario" 16 "$port" "$pid" "$WORK/ab-$build"
      done
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
  done
  for build in old new; do
    psql "$PG/postgres" -qc "drop database if exists scimd_bench_ab_$build with (force)" \
      >/dev/null 2>&1 || true
  done
  TOKEN="$TOKEN_BEFORE_AB"
fi

# ---------------------------------------------------------------- report
[ -z "${BENCH_RAW:-}" ] || cp "$RAW" "$BENCH_RAW"
cp "$WORK/results.csv" "$CSV"
cp "$WORK/growth.csv" "$GROWTH_CSV"
if [ -n "$STATEMENTS" ] && [ -s "$STATEMENTS" ]; then cp "$STATEMENTS" "$STATEMENTS_CSV"; else rm -f "$STATEMENTS_CSV"; fi
python3 "$WORK/tools/report.py" \
  --csv "$CSV" --growth-csv "$GROWTH_CSV" --users "$USERS" --seconds "$SECS" --threads "$THREADS" \
  --idle-rss "$IDLE_RSS" --peak-rss "$PEAK_RSS_PG" --sqlite-idle-rss "$SQLITE_IDLE_RSS" \
  --cold-ms "$COLD_MS" --started "$START_TIME" --seed-env "$WORK/pg/seed.env" \
  --group-check "$GROUP_CHECK" --pg-url "$PG/postgres" --notes scripts/bench/notes.md \
  --compare "${BENCH_COMPARE:-}" --compare-label "${BENCH_COMPARE_LABEL:-}" \
  --stream-env "$WORK/stream.env" --stream-stats "$WORK/stream_stats.json" \
  --console-csv "$WORK/console.csv" --members-csv "$WORK/members.csv" \
  --statements-csv "${STATEMENTS:+$STATEMENTS_CSV}" \
  >"$WORK/BENCHMARKS.md"
cp "$WORK/BENCHMARKS.md" BENCHMARKS.md
echo "== wrote benchmarks/results.csv and BENCHMARKS.md"
