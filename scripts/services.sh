#!/usr/bin/env bash
# Starts the local services the integration tests use (PostgreSQL), if they are not
# already running (go-svc machines start them before a session; this makes
# a restarted or fresh machine behave the same). Idempotent.
set -uo pipefail

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() { # name host port
  for _ in $(seq 1 60); do
    up "$2" "$3" && { echo "$1 is up on $2:$3"; return 0; }
    sleep 0.5
  done
  echo "$1 did not come up on $2:$3" >&2
  return 1
}

if ! up 127.0.0.1 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
wait_up PostgreSQL 127.0.0.1 5432

# Redis and NATS (6379, 4222) are not started: no test uses them yet. The
# cross-node bus over watermill will, and will add them here.
