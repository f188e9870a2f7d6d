#!/usr/bin/env bash
# Drives the operator console in a real browser (headless Chromium through chromedriver, from
# the Debian packages; selenium from PyPI) against a live scimd on SQLite: seeds an
# organization the way an IdP would, signs in with an admin key, opens every page, checks what
# each shows, creates and revokes a key through the forms, and saves a screenshot of each
# page. Loopback only; stops by itself.
# Usage: scripts/console-check.sh [screenshot folder, default a new temporary one]
set -euo pipefail
cd "$(dirname "$0")/.."

SHOTS="${1:-$(mktemp -d /tmp/scimd-console.XXXXXX)}"
mkdir -p "$SHOTS"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
python3 -c 'import selenium' 2>/dev/null || pip install --quiet --root-user-action=ignore selenium

# shellcheck source=scripts/sqlite-server.sh
source scripts/sqlite-server.sh
export RUST_LOG=error
"$BIN" org create acme >/dev/null
"$BIN" org create globex >/dev/null
"$BIN" user-attribute create --org acme cost_center
TOKEN="$("$BIN" key create --org acme --name okta)"
ADMIN_TOKEN="$("$BIN" admin-key create --name console-check)"
"$BIN" stream create --org acme --poll >/dev/null 2>&1
start_server

BASE="http://127.0.0.1:$PORT" TOKEN="$TOKEN" ADMIN_TOKEN="$ADMIN_TOKEN" SHOTS="$SHOTS" \
  python3 scripts/console_check.py
echo "console check passed; screenshots in $SHOTS"
