# Sourced by the scripts that check a live scimd on a SQLite file of its own (schemathesis.sh,
# console-check.sh): builds the debug binary and sets up, without starting it, a server on a
# free loopback port, removed with its files when the script exits.
#   after sourcing: $BIN, $WORK, $PORT, DATABASE_URL / SCIMD_LISTEN exported;
#   start_server   starts `scimd serve` (log in $WORK/scimd.log) and waits for its health.
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --quiet --bin scimd
BIN="${CARGO_TARGET_DIR:-target}/debug/scimd"
export DATABASE_URL="sqlite://$WORK/scimd.db" SCIMD_LISTEN="127.0.0.1:$PORT" SCIMD_BOOTSTRAP=false

start_server() {
  "$BIN" serve 2>"$WORK/scimd.log" &
  PID=$!
  for _ in $(seq 1 100); do "$BIN" healthcheck 2>/dev/null && return 0; sleep 0.05; done
  echo "scimd did not become healthy:" >&2
  cat "$WORK/scimd.log" >&2
  return 1
}
