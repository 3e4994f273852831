#!/usr/bin/env bash
# Runs dynalite (an in-memory DynamoDB API written for Node), the server the
# store/dynamodb tests talk to.
#
#   scripts/dynalite.sh install   # npm install dynalite@4.0.0 outside the repo (idempotent)
#   scripts/dynalite.sh start     # install if needed, start on 127.0.0.1:4567, print the endpoint
#   scripts/dynalite.sh stop      # stop the server this script started
#
# DYNALITE_DIR (default $HOME/.cache/eventsource/dynalite) holds the package,
# the pid file and the log; DYNALITE_PORT (default 4567) is the port.
set -euo pipefail

VERSION=4.0.0
DIR=${DYNALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsource/dynalite}
PORT=${DYNALITE_PORT:-4567}
BIN="$DIR/node_modules/dynalite/cli.js"
PIDFILE="$DIR/dynalite.pid"
GUARD="$(cd "$(dirname "$0")" && pwd)/dynalite-guard.js"
LOG="$DIR/dynalite.log"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

installed() {
	[ -f "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/dynalite/package.json" 2>/dev/null
}

install() {
	if installed; then
		return 0
	fi
	command -v npm >/dev/null || { echo "dynalite: npm not found (Node 18+ is needed)" >&2; exit 1; }
	mkdir -p "$DIR"
	echo "dynalite: installing dynalite@$VERSION into $DIR" >&2
	npm install --silent --no-audit --no-fund --prefix "$DIR" "dynalite@$VERSION" >&2
}

start() {
	if up; then
		echo "http://127.0.0.1:$PORT"
		return 0
	fi
	install
	mkdir -p "$DIR"
	# No --path: the data lives in memory and is gone when the server stops.
	nohup node --require "$GUARD" "$BIN" --host 127.0.0.1 --port "$PORT" --createTableMs 20 --deleteTableMs 20 --updateTableMs 20 >"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 100); do
		if up; then
			echo "http://127.0.0.1:$PORT"
			return 0
		fi
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "dynalite: did not come up on 127.0.0.1:$PORT; see $LOG" >&2
	cat "$LOG" >&2 || true
	exit 1
}

stop() {
	if [ -f "$PIDFILE" ]; then
		pid=$(cat "$PIDFILE")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		rm -f "$PIDFILE"
	elif up; then
		echo "dynalite: something listens on :$PORT but was not started by this script; left alone" >&2
	fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 install|start|stop" >&2
	exit 2
	;;
esac
