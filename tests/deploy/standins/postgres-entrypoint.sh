#!/bin/sh
# A stand-in for the official postgres image's entrypoint, for an image made from Debian's
# postgresql-15 where no registry is reachable (tests/deploy/test_compose.py). It honours
# what docker-compose.yml uses: POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE and the
# *.sql files of /docker-entrypoint-initdb.d, run once on an empty data directory.
set -eu
export PGDATA=/var/lib/postgresql/data
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl --wait --options="-c listen_addresses=''" start >/dev/null
  psql --username="$POSTGRES_USER" --dbname=postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$script" ] && psql --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" -f "$script" >/dev/null
  done
  pg_ctl --wait stop >/dev/null
fi
exec postgres -c listen_addresses='*'
