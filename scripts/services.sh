#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up: PostgreSQL, MariaDB,
# NATS (JetStream) and RabbitMQ, on their default loopback ports. A server already
# listening is left alone; one that is down is started with the machine's
# own start command. Safe to run again.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port
	for _ in $(seq 1 60); do
		up "$2" && { echo "services: $1 is up on :$2"; return 0; }
		sleep 1
	done
	echo "services: $1 did not come up on :$2" >&2
	return 1
}

status=0

if ! up 5432; then
	echo "services: starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
wait_for PostgreSQL 5432 || status=1
if command -v psql >/dev/null && up 5432; then
	psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 ||
		psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi

if ! up 3306; then
	echo "services: starting MariaDB"
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
wait_for MariaDB 3306 || status=1
if command -v mariadb >/dev/null && up 3306; then
	mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test" 2>/dev/null || true
fi

if ! up 4222; then
	echo "services: starting NATS"
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
		-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
wait_for NATS 4222 || status=1

if ! up 5672; then
	echo "services: starting RabbitMQ"
	rabbitmq-server -detached || true
fi
wait_for RabbitMQ 5672 || status=1

exit $status
