#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server on 127.0.0.1, its URL in MESA_TEST_DATABASE_URL.
# Installs Debian's postgresql when missing; the server and its data are removed when the command ends.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ]; then
  echo "Installing PostgreSQL (Debian package)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(pg_bin)"
PORT="${MESA_TEST_PG_PORT:-54329}"
DATA="$(mktemp -d /tmp/mesa-pg.XXXXXX)"
RUN_AS=()
if [ "$(id -u)" = "0" ]; then  # PostgreSQL refuses to run as root
  chown postgres "$DATA"
  RUN_AS=(runuser -u postgres --)
fi
cleanup() {
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT
"${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -A trust -U mesa -E UTF8 >/dev/null
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
  -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"${RUN_AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U mesa mesa_test
export MESA_TEST_DATABASE_URL="postgresql+psycopg://mesa@127.0.0.1:$PORT/mesa_test"
echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') at $MESA_TEST_DATABASE_URL"
"$@"
