#!/usr/bin/env bash
# Property-based API testing of a live scimd against openapi.yaml with schemathesis (PyPI):
# every operation, with a real key, failing on any 5xx or any response the contract does not
# describe (status, content type, headers, body schema). Loopback only; stops by itself.
# Usage: scripts/schemathesis.sh [max examples per operation, default 25]
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${1:-25}"
command -v schemathesis >/dev/null || pip install --quiet schemathesis
# shellcheck source=scripts/sqlite-server.sh
source scripts/sqlite-server.sh
export SCIMD_RATE_LIMIT_PER_MINUTE=100000000 SCIMD_AUTH_FAILURE_LIMIT_PER_MINUTE=100000000 RUST_LOG=error
"$BIN" org create acme >/dev/null
"$BIN" user-attribute create --org acme good_blob
TOKEN="$("$BIN" key create --org acme)"
ADMIN_TOKEN="$("$BIN" admin-key create --name schemathesis)"
start_server

status=0
# The SCIM API under its base URL, every tag but the root endpoints' (Operations, Events and
# Admin are checked separately): Users, Groups, Search, Discovery and Bulk (`POST /Bulk`, whose
# operations reach the same resources; the key's limit above is far beyond any Bulk generated).
schemathesis run openapi.yaml \
  --url "http://127.0.0.1:$PORT/scim/v2" \
  -H "Authorization: Bearer $TOKEN" \
  --exclude-tag Operations --exclude-tag Events --exclude-tag Admin \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$EXAMPLES" --request-timeout 10 --generation-deterministic \
  --suppress-health-check all || status=$?
schemathesis run openapi.yaml \
  --url "http://127.0.0.1:$PORT" \
  --include-tag Operations \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 5 --request-timeout 10 || status=$?
# The event endpoints at the host root: the JWKS, and polls of a real stream with its token
# (random stream ids are answered 404).
POLL_TOKEN="$("$BIN" stream create --org acme --poll 2>/dev/null | tail -1)"
schemathesis run openapi.yaml \
  --url "http://127.0.0.1:$PORT" \
  -H "Authorization: Bearer $POLL_TOKEN" \
  --include-tag Events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 10 --request-timeout 30 || status=$?
# The admin API at the host root, with an admin key. Operations that would destroy the fixtures
# the runs share (organization acme, its key, this admin key, the `initial` signing secret) are
# left out: deleting or renaming an organization, revoking a key or an admin key, retiring a
# secret. The integration tests (tests/api/admin.rs) exercise those.
schemathesis run openapi.yaml \
  --url "http://127.0.0.1:$PORT" \
  -H "Authorization: Bearer $ADMIN_TOKEN" \
  --include-tag Admin \
  --exclude-operation-id deleteOrg --exclude-operation-id renameOrg \
  --exclude-operation-id revokeOrgKey --exclude-operation-id revokeAdminKey \
  --exclude-operation-id retireSecret \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$EXAMPLES" --request-timeout 10 --generation-deterministic \
  --suppress-health-check all || status=$?
if grep -q panicked "$WORK/scimd.log"; then
  echo "FAIL: scimd panicked" >&2
  status=1
fi
kill -0 "$PID" || { echo "FAIL: scimd died" >&2; status=1; }
exit "$status"
