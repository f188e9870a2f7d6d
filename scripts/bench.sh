#!/usr/bin/env bash
# scimd benchmark: one command, loopback only, stops by itself, writes benchmarks/results.csv
# and BENCHMARKS.md. Measures scimd (release, Postgres, rate limiter on) against the ceilings
# measured in the same run: pgbench on the same database and a minimal axum + sqlx "floor".
#   BENCH_USERS (default 100000)   users seeded
#   BENCH_SECONDS (default 15)     seconds per scenario and connection count
#   BENCH_CONNECTIONS (default "16 64")
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${BENCH_USERS:-100000}"
SECS="${BENCH_SECONDS:-15}"
CONNS="${BENCH_CONNECTIONS:-16 64}"
PG="postgres://postgres@127.0.0.1:5432"
DB="scimd_bench"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } || {
  echo "wrk is required (Debian package wrk)" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is required (postgresql-contrib)" >&2; exit 1; }

echo "== build (release)"
cargo build --release --quiet --bin scimd --example floor --example bench_seed
TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="$TARGET/scimd"

echo "== cold start on an empty SQLite file (best of 5)"
best=999999
for _ in 1 2 3 4 5; do
  port="$(free_port)"; rm -f "$WORK/cold.db"*
  start=$(date +%s%N)
  DATABASE_URL="sqlite://$WORK/cold.db" SCIMD_LISTEN="127.0.0.1:$port" SCIMD_BOOTSTRAP=false RUST_LOG=error \
    "$BIN" serve 2>/dev/null & pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.002; done
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "$ms" -lt "$best" ] && best=$ms
done
COLD_MS=$best
echo "cold start: ${COLD_MS} ms"

echo "== Postgres database $DB with $USERS users"
psql "$PG/postgres" -qc "drop database if exists $DB with (force)" -c "create database $DB"
export DATABASE_URL="$PG/$DB" SCIMD_JWT_SECRET="bench-secret-bench-secret-bench-secret-00"
export SCIMD_BOOTSTRAP=false RUST_LOG=error
# The limiter stays on (its cost is part of every request) with a limit the load never reaches.
export SCIMD_RATE_LIMIT_PER_MINUTE=1000000000
"$BIN" migrate 2>/dev/null
"$BIN" org create bench >/dev/null
TOKEN="$("$BIN" key create --org bench)"
"$TARGET/examples/bench_seed" "$DATABASE_URL" bench "$USERS" "$WORK"
psql "$PG/$DB" -qc "create table bench_ids (n int primary key, id uuid not null)"
awk '{print NR "\t" $1}' "$WORK/users.txt" | psql "$PG/$DB" -qc "copy bench_ids from stdin"
psql "$PG/$DB" -qc "vacuum analyze"

APP_PORT="$(free_port)"; FLOOR_PORT="$(free_port)"
SCIMD_LISTEN="127.0.0.1:$APP_PORT" "$BIN" serve 2>/dev/null & SCIMD_PID=$!; PIDS+=("$SCIMD_PID")
"$TARGET/examples/floor" "$DATABASE_URL" "127.0.0.1:$FLOOR_PORT" & PIDS+=($!)
until curl -sf "http://127.0.0.1:$APP_PORT/healthz" >/dev/null && curl -s "http://127.0.0.1:$FLOOR_PORT/" >/dev/null; do sleep 0.05; done
sleep 1
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SCIMD_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SCIMD_PID/stat"; }
IDLE_RSS="$(rss_mb)"

cat > "$WORK/select.sql" <<SQL
\set n random(1, $USERS)
select doc from users where id = (select id from bench_ids where n = :n);
SQL
cat > "$WORK/update.sql" <<SQL
\set n random(1, $USERS)
update users set modified_at = modified_at + 1 where id = (select id from bench_ids where n = :n);
SQL

CSV=benchmarks/results.csv
echo "scenario,connections,requests_per_s,p50_ms,p99_ms,non_2xx,scimd_cpu_s,scimd_rss_mb" > "$CSV"
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'; }
run_wrk() { # scenario connections port
  local scenario=$1 c=$2 port=$3 out="$WORK/wrk.out"
  local before; before=$(cpu_ticks)
  SCENARIO=$scenario TOKEN=$TOKEN DATA=$WORK wrk -t2 -c"$c" -d"${SECS}s" --latency \
    -s scripts/bench/scimd.lua "http://127.0.0.1:$port" > "$out"
  local rps p50 p99 non2xx cpu
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out" | to_ms)
  p99=$(awk '$1 == "99%" {print $2}' "$out" | to_ms)
  non2xx=$(awk -F= '/^non2xx=/ {print $2}' "$out")
  cpu=$(awk -v a="$before" -v b="$(cpu_ticks)" 'BEGIN {printf "%.1f", (b - a) / 100}')
  echo "$scenario,$c,$rps,$p50,$p99,${non2xx:-0},$cpu,$(rss_mb)" | tee -a "$CSV"
}
run_pgbench() { # name script connections
  local tps
  tps=$(pgbench -n -c "$2" -j 2 -T "$SECS" -f "$WORK/$1.sql" "$PG/$DB" 2>/dev/null |
    awk '/^tps/ {print $3; exit}')
  echo "pgbench_$1,$2,$tps,,,,," | tee -a "$CSV"
}

for c in $CONNS; do
  echo "== $c connections"
  run_pgbench select "$c"
  run_pgbench update "$c"
  run_wrk floor "$c" "$FLOOR_PORT"
  for scenario in get_user filter_user_name list_page put_user patch_user member_small member_big; do
    run_wrk "$scenario" "$c" "$APP_PORT"
  done
done

python3 scripts/bench/report.py "$CSV" "$IDLE_RSS" "$COLD_MS" "$USERS" "$SECS" > BENCHMARKS.md
echo "== wrote $CSV and BENCHMARKS.md"
