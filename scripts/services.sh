#!/usr/bin/env bash
# Make sure the local services the integration tests use are up; start the ones that are not.
# Usage: scripts/services.sh start | status
# Exits non-zero when a service cannot be started (CI then fails: nothing is skipped silently).
set -u

declare -A PORTS=([postgres]=5432 [mariadb]=3306 [redis]=6379 [rabbitmq]=5672 [mosquitto]=1883 [nats]=4222)
ORDER=(postgres mariadb redis rabbitmq mosquitto nats)

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_one() {
  case "$1" in
    postgres)  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start ;;
    mariadb)   start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd ;;
    redis)     redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
                 --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ;;
    rabbitmq)  rabbitmq-server -detached ;;
    mosquitto) mosquitto -d -c /etc/mosquitto/mosquitto.conf ;;
    nats)      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
                 -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ;;
  esac
}

status=0
for name in "${ORDER[@]}"; do
  port=${PORTS[$name]}
  if up "$port"; then
    echo "$name: up (127.0.0.1:$port)"
    continue
  fi
  if [ "${1:-status}" != start ]; then
    echo "$name: DOWN (127.0.0.1:$port)"; status=1; continue
  fi
  echo "$name: down, starting"
  start_one "$name" >/dev/null 2>&1
  for _ in $(seq 1 60); do up "$port" && break; sleep 1; done
  if up "$port"; then echo "$name: up (127.0.0.1:$port)"; else echo "$name: FAILED to start"; status=1; fi
done
exit $status
