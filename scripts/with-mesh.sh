#!/usr/bin/env bash
# with-mesh.sh CMD [ARGS…] — run CMD against a private `mesh dev` (producer + workers of every
# role in one process) on a free loopback port, with its own PostgreSQL schema and Redis key
# prefix, then stop it (SIGTERM) and drop what it created. CMD sees MESH_URL.
#
# Needs bin/mesh (task build) and Redis/PostgreSQL answering (scripts/services.sh).
# MESH_DEV_ARGS adds flags to `mesh dev`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mesh="$root/bin/mesh"
[ -x "$mesh" ] || { echo "with-mesh: $mesh missing (run: go tool -modfile=tools.mod task build)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
suffix=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MESH_SCHEMA="webtest_$suffix" MESH_PREFIX="webtest_$suffix"
log="$root/.task/mesh-dev-$suffix.log"
mkdir -p "$root/.task"

# shellcheck disable=SC2086
"$mesh" dev --addr "127.0.0.1:$port" --metrics-addr "" --web-dir "$root/web/dist" ${MESH_DEV_ARGS:-} >"$log" 2>&1 &
pid=$!

cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  psql "${DATABASE_URL:-postgres://127.0.0.1:5432/test}" -qc "DROP SCHEMA IF EXISTS \"$MESH_SCHEMA\" CASCADE" >/dev/null 2>&1 || true
  redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379/0}" --scan --pattern "$MESH_PREFIX*" 2>/dev/null |
    xargs -r redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379/0}" DEL >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

export MESH_URL="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  curl -fsS "$MESH_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "with-mesh: mesh dev exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$MESH_URL/readyz" >/dev/null || { echo "with-mesh: mesh dev not ready:" >&2; cat "$log" >&2; exit 1; }

status=0
"$@" || status=$?
if [ $status -ne 0 ]; then echo "with-mesh: mesh dev log:" >&2; tail -50 "$log" >&2; fi
exit $status
