# Throwaway PostgreSQL cluster on 127.0.0.1 for the store conformance suite.
# Source it, then `pg_start` (exports FLEETNAS_TEST_POSTGRES_URL) and `pg_stop`.
PG_PORT="${PG_PORT:-55432}"
PG_DIR=""

_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

_as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local bin; bin="$(_pg_bin)"
  [ -n "$bin" ] || { echo "ci: no PostgreSQL server binaries"; return 1; }
  PG_DIR="$(mktemp -d /tmp/fleetnas-pg.XXXXXX)"
  [ "$(id -u)" = "0" ] && chown postgres "$PG_DIR"
  _as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust >/dev/null || return 1
  _as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null || { cat "$PG_DIR/log"; return 1; }
  export FLEETNAS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "ci: PostgreSQL on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  local bin; bin="$(_pg_bin)"
  if [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ]; then
    _as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
