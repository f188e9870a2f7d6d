#!/usr/bin/env bash
# Database outage under load: a private Postgres (own data dir and port, never the shared
# server) is stopped while requests flow. Every answer during the outage must be a SCIM 503
# with Retry-After within the request timeout (no hang, no 500); /readyz must say 503; after
# Postgres restarts, scimd must serve again within 5 s without being restarted.
# Usage: scripts/outage.sh [outage seconds, default 3]. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

OUTAGE_SECONDS="${1:-3}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
WORK="$(mktemp -d)"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
APP_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SCIMD_PID=""

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -n "$SCIMD_PID" ] && kill "$SCIMD_PID" 2>/dev/null || true
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== private Postgres on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK" "$WORK/pg"
as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
start_pg() {
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/log" \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null
}
start_pg
as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres scimd

echo "== scimd on 127.0.0.1:$APP_PORT"
cargo build --quiet --bin scimd
BIN="${CARGO_TARGET_DIR:-target}/debug/scimd"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/scimd"
export SCIMD_JWT_SECRET="outage-test-secret-outage-test-secret-0123"
export SCIMD_LISTEN="127.0.0.1:$APP_PORT" SCIMD_BOOTSTRAP=false SCIMD_REQUEST_TIMEOUT=5
export SCIMD_RATE_LIMIT_PER_MINUTE=100000000 RUST_LOG=error
"$BIN" org create acme >/dev/null
TOKEN="$("$BIN" key create --org acme)"
"$BIN" serve 2>"$WORK/scimd.log" &
SCIMD_PID=$!
for _ in $(seq 1 100); do "$BIN" healthcheck 2>/dev/null && break; sleep 0.05; done

# One request: prints "status seconds".
probe() {
  curl -s -o "$WORK/body" -w '%{http_code} %{time_total}\n' --max-time 10 \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$APP_PORT/scim/v2/Users?count=1"
}
probe | grep -q '^200 ' || { echo "FAIL: scimd is not serving before the outage" >&2; exit 1; }

echo "== stopping Postgres for ${OUTAGE_SECONDS}s under load"
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null
# Eight clients keep requesting through the outage; every answer is recorded.
end=$((SECONDS + OUTAGE_SECONDS))
clients=()
for client in $(seq 1 8); do
  (
    while [ "$SECONDS" -lt "$end" ]; do
      out="$(curl -s -o "$WORK/body.$client" -w '%{http_code} %{time_total}' --max-time 10 \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$APP_PORT/scim/v2/Users?count=1")"
      if grep -q '"status":"503"' "$WORK/body.$client" 2>/dev/null; then body=scim503; else body=other; fi
      echo "$out $body"
    done > "$WORK/answers.$client"
  ) &
  clients+=($!)
done
wait "${clients[@]}"
cat "$WORK"/answers.* > "$WORK/answers"
total="$(wc -l < "$WORK/answers")"
unavailable="$(awk '$1 == 503 && $3 == "scim503"' "$WORK/answers" | wc -l)"
bad="$(awk '!($1 == 503 && $3 == "scim503")' "$WORK/answers" | wc -l)"
slow="$(awk '$2 > 5.5' "$WORK/answers" | wc -l)"
[ "$bad" = 0 ] || { echo "unexpected answers during the outage:"; awk '!($1 == 503 && $3 == "scim503")' "$WORK/answers" | head; }
ready="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APP_PORT/readyz")"
retry_after="$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$APP_PORT/scim/v2/Users?count=1" | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after" {print $2}')"

echo "== starting Postgres again"
start_pg
t0=$(date +%s.%N); recovered=""
for _ in $(seq 1 100); do
  if probe | grep -q '^200 '; then recovered="$(echo "$(date +%s.%N) - $t0" | bc)"; break; fi
  sleep 0.05
done
kill -0 "$SCIMD_PID" || { echo "FAIL: scimd died" >&2; exit 1; }
panics="$(grep -c 'panicked' "$WORK/scimd.log" || true)"

echo "requests during outage: $total, SCIM 503: $unavailable, other: $bad, over the timeout: $slow"
echo "/readyz during outage: $ready; Retry-After: ${retry_after:-none}; recovered after restart in: ${recovered:-never}s; panics: $panics"
[ "$bad" = 0 ] && [ "$slow" = 0 ] && [ "$ready" = 503 ] && [ -n "$retry_after" ] && [ -n "$recovered" ] && [ "$panics" = 0 ] &&
  awk -v r="$recovered" 'BEGIN { exit !(r <= 5) }' || { echo "FAIL: outage behaviour" >&2; exit 1; }
echo "outage: PASS"
