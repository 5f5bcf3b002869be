#!/usr/bin/env bash
# services.sh — make sure Redis and PostgreSQL answer, starting them when they do not.
#
#   scripts/services.sh        ensure both, then print `export …` lines for the URLs in use
#   scripts/services.sh stop   stop whatever this script started (scratch servers)
#
# Order of attempts for each service, as the README promises:
#   1. the URL already answers (REDIS_URL / DATABASE_URL, defaults 127.0.0.1:6379 and
#      127.0.0.1:5432/test);
#   2. a Docker engine answers: `docker compose up -d redis postgres`;
#   3. local binaries: redis-server, or initdb + pg_ctl, in a scratch directory
#      (.task/services) on a free port;
#   4. otherwise stop with a message naming what to install.
# Progress goes to stderr; stdout carries only the export lines, so callers can
# `eval "$(scripts/services.sh)"`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/.task/services"
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
DATABASE_URL=${DATABASE_URL:-postgres://127.0.0.1:5432/test?sslmode=disable}

log() { printf 'services: %s\n' "$*" >&2; }

# hostport URL → "host port" (defaults per scheme).
hostport() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  rest=${rest%%\?*}
  local host=${rest%%:*} port=${rest##*:}
  [ "$port" = "$rest" ] && port=$2
  echo "${host:-127.0.0.1} $port"
}

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

free_port() {
  local p=$1
  while answers 127.0.0.1 "$p"; do p=$((p + 1)); done
  echo "$p"
}

docker_up() {
  command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1 || return 1
  log "starting $1 with docker compose"
  (cd "$root" && docker compose up -d "$1") >&2
}

wait_for() { # host port what
  for _ in $(seq 1 100); do answers "$1" "$2" && return 0; sleep 0.1; done
  log "$3 did not come up on $1:$2"; return 1
}

ensure_redis() {
  read -r host port < <(hostport "$REDIS_URL" 6379)
  if answers "$host" "$port"; then log "redis answers at $host:$port"; return; fi
  if docker_up redis; then wait_for 127.0.0.1 6379 redis; REDIS_URL=redis://127.0.0.1:6379/0; return; fi
  if command -v redis-server >/dev/null 2>&1; then
    port=$(free_port 16379)
    mkdir -p "$scratch/redis"
    log "starting a scratch redis-server on 127.0.0.1:$port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$scratch/redis" --pidfile "$scratch/redis/redis.pid" --logfile "$scratch/redis/redis.log" >&2
    wait_for 127.0.0.1 "$port" redis-server
    REDIS_URL=redis://127.0.0.1:$port/0
    return
  fi
  log "Redis does not answer at $host:$port and neither Docker nor redis-server is available."
  log "Install Redis (Debian: apt-get install redis-server) or set REDIS_URL."
  exit 1
}

pg_bin() { # find a PostgreSQL server binary
  local b
  for b in "$(command -v "$1" 2>/dev/null)" /usr/lib/postgresql/*/bin/"$1"; do
    [ -n "$b" ] && [ -x "$b" ] && { echo "$b"; return 0; }
  done
  return 1
}

ensure_postgres() {
  read -r host port < <(hostport "$DATABASE_URL" 5432)
  if answers "$host" "$port"; then log "postgres answers at $host:$port"; return; fi
  if docker_up postgres; then
    wait_for 127.0.0.1 5432 postgres
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
    return
  fi
  local initdb pgctl
  if initdb=$(pg_bin initdb) && pgctl=$(pg_bin pg_ctl); then
    port=$(free_port 15432)
    local data="$scratch/pg" run=()
    # PostgreSQL refuses to run as root: use the postgres user when we are root.
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      run=(runuser -u postgres --)
    fi
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown -R postgres "$scratch"
    if [ ! -f "$data/PG_VERSION" ]; then
      log "initdb in $data"
      "${run[@]}" "$initdb" -D "$data" -A trust -U postgres >/dev/null
    fi
    log "starting a scratch PostgreSQL on 127.0.0.1:$port"
    "${run[@]}" "$pgctl" -D "$data" -l "$data/server.log" -w \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2
    DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable
    return
  fi
  log "PostgreSQL does not answer at $host:$port and neither Docker nor initdb/pg_ctl is available."
  log "Install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL."
  exit 1
}

stop_scratch() {
  if [ -f "$scratch/redis/redis.pid" ]; then
    kill "$(cat "$scratch/redis/redis.pid")" 2>/dev/null || true
  fi
  if [ -f "$scratch/pg/postmaster.pid" ]; then
    local pgctl run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    pgctl=$(pg_bin pg_ctl) && "${run[@]}" "$pgctl" -D "$scratch/pg" -m fast stop >&2 || true
  fi
}

case "${1:-ensure}" in
  ensure)
    ensure_redis
    ensure_postgres
    # Single quotes, not printf %q: go-task's shell keeps %q's backslashes.
    q() { printf "export %s='%s'\n" "$1" "${2//\'/}"; }
    q REDIS_URL "$REDIS_URL"
    q DATABASE_URL "$DATABASE_URL"
    q TEST_REDIS_URL "${TEST_REDIS_URL:-$REDIS_URL}"
    q TEST_DATABASE_URL "${TEST_DATABASE_URL:-$DATABASE_URL}"
    ;;
  stop) stop_scratch ;;
  *) echo "usage: $0 [ensure|stop]" >&2; exit 2 ;;
esac
