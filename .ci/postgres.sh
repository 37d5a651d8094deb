#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback and print its URL.
# Usage: .ci/postgres.sh DIR [PORT]   (installs Debian's postgresql when missing)
set -euo pipefail
dir=${1:?usage: .ci/postgres.sh DIR [PORT]}
port=${2:-55432}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
run_as=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: run it as its own user.
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
  mkdir -p "$dir" && chown postgres "$dir"
  run_as=(runuser -u postgres --)
fi
mkdir -p "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
fi
"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >&2
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname='dunning'" | grep -q 1 \
  || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres dunning
echo "postgresql+psycopg://postgres@127.0.0.1:$port/dunning"
