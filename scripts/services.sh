#!/usr/bin/env bash
# Provision and start the two backing services the stack needs, on loopback only:
# PostgreSQL (Debian package, run as the `postgres` user because it refuses root) and Redis.
# Idempotent: safe to run again while they are up. Skipped for a service whose URL is given
# in ORCH_DATABASE_URL / ORCH_REDIS_URL (the operator brings their own).
#
#   scripts/services.sh start   install if missing, start, create the role and databases
#   scripts/services.sh stop    stop what this script started
#   scripts/services.sh status
set -euo pipefail

PG_USER=orchestrator
PG_PASSWORD=orchestrator
PG_DB=orchestrator
PG_TEST_DB=orchestrator_test
REDIS_PORT="${ORCH_REDIS_PORT:-6379}"
STATE_DIR="${ORCH_STATE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.run}"

log() { printf '[services] %s\n' "$*" >&2; }

need_install() {
  local missing=()
  command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # Not a service: the clock-skew test runs a replica under libfaketime (make test needs it).
  command -v faketime >/dev/null 2>&1 || missing+=(faketime)
  printf '%s\n' "${missing[@]}"
}

install_missing() {
  local pkgs
  pkgs=$(need_install | xargs)
  [ -z "$pkgs" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: $pkgs — install them (sudo apt-get install -y $pkgs) or set ORCH_DATABASE_URL/ORCH_REDIS_URL"
    exit 1
  fi
  log "installing $pkgs from Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
}

pg_cluster() { pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}'; }

start_pg() {
  if [ -n "${ORCH_DATABASE_URL:-}" ]; then log "using ORCH_DATABASE_URL"; return 0; fi
  local ver name
  read -r ver name <<<"$(pg_cluster)"
  if [ -z "${ver:-}" ]; then
    ver=$(ls /usr/lib/postgresql | sort -n | tail -1); name=main
    log "creating PostgreSQL $ver cluster $name"
    pg_createcluster "$ver" "$name" >/dev/null
  fi
  # Tuned for a small dev/CI box: the ledger is write-heavy (job rows + outbox events).
  local conf="/etc/postgresql/$ver/$name/conf.d/orchestrator.conf"
  if [ ! -f "$conf" ]; then
    cat >"$conf" <<CONF
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 512MB
synchronous_commit = off
max_wal_size = 2GB
CONF
  fi
  # Per-statement totals for `make bench`'s CPU budget. A library is loaded at start only: a
  # new cluster gets it on its first start; one already running is not restarted under its
  # users (the bench says so; `pg_ctlcluster $ver $name restart` when convenient).
  local stats="/etc/postgresql/$ver/$name/conf.d/orchestrator-statements.conf"
  if [ ! -f "$stats" ]; then
    printf "shared_preload_libraries = 'pg_stat_statements'\n" >"$stats"
  fi
  if ! pg_lsclusters --no-header | awk -v v="$ver" -v n="$name" '$1==v && $2==n {print $4}' | grep -q online; then
    log "starting PostgreSQL $ver/$name"
    pg_ctlcluster "$ver" "$name" start
  fi
  for _ in $(seq 1 50); do
    runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
    sleep 0.2
  done
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB;
  END IF;
END \$\$;
SQL
  for db in "$PG_DB" "$PG_TEST_DB"; do
    if ! runuser -u postgres -- psql -tAq -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
      runuser -u postgres -- createdb -O "$PG_USER" "$db"
    fi
    # The view the bench reads (every database's statements, hence pg_read_all_stats).
    runuser -u postgres -- psql -q -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  done
  runuser -u postgres -- psql -q -d postgres -c "GRANT pg_read_all_stats TO $PG_USER" >/dev/null
  log "PostgreSQL ready: postgresql://$PG_USER:***@127.0.0.1:5432/$PG_DB"
}

start_redis() {
  if [ -n "${ORCH_REDIS_URL:-}" ]; then log "using ORCH_REDIS_URL"; return 0; fi
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE_DIR"
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --save '' --appendonly no --dir "$STATE_DIR" \
    --pidfile "$STATE_DIR/redis.pid" --logfile "$STATE_DIR/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

case "${1:-start}" in
  start) install_missing; start_pg; start_redis ;;
  stop)
    [ -f "$STATE_DIR/redis.pid" ] && kill "$(cat "$STATE_DIR/redis.pid")" 2>/dev/null || true
    read -r ver name <<<"$(pg_cluster)"; [ -n "${ver:-}" ] && pg_ctlcluster "$ver" "$name" stop || true ;;
  status) pg_lsclusters; redis-cli -p "$REDIS_PORT" ping || true ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
