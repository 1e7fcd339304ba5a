#!/usr/bin/env bash
# Starts the local services the integration tests use, if they are not
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

if ! up 127.0.0.1 6379; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_up Redis 127.0.0.1 6379

if ! up 127.0.0.1 4222; then
  echo "starting NATS with JetStream"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
wait_up NATS 127.0.0.1 4222
