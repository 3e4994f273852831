#!/usr/bin/env bash
# Runs kinesalite (an in-memory Kinesis API written for Node), the server the
# store/dynamodb/lambda tests put records into.
#
#   scripts/kinesalite.sh install   # npm install kinesalite@3.3.3 outside the repo (idempotent)
#   scripts/kinesalite.sh start     # install if needed, start on 127.0.0.1:4568, print the endpoint
#   scripts/kinesalite.sh stop      # stop the server this script started
#
# KINESALITE_DIR (default $HOME/.cache/eventsource/kinesalite) holds the package,
# the pid file and the log; KINESALITE_PORT (default 4568) is the port.
set -euo pipefail

VERSION=3.3.3
DIR=${KINESALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsource/kinesalite}
PORT=${KINESALITE_PORT:-4568}
BIN="$DIR/node_modules/kinesalite/cli.js"
PIDFILE="$DIR/kinesalite.pid"
GUARD="$(cd "$(dirname "$0")" && pwd)/dynalite-guard.js" # the same guard: a client that goes away must not kill the server
LOG="$DIR/kinesalite.log"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

installed() {
	[ -f "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/kinesalite/package.json" 2>/dev/null
}

install() {
	if installed; then
		return 0
	fi
	command -v npm >/dev/null || { echo "kinesalite: npm not found (Node 18+ is needed)" >&2; exit 1; }
	mkdir -p "$DIR"
	echo "kinesalite: installing kinesalite@$VERSION into $DIR" >&2
	npm install --silent --no-audit --no-fund --prefix "$DIR" "kinesalite@$VERSION" >&2
}

start() {
	if up; then
		echo "http://127.0.0.1:$PORT"
		return 0
	fi
	install
	mkdir -p "$DIR"
	# No --path: the data lives in memory and is gone when the server stops.
	nohup node --require "$GUARD" "$BIN" --host 127.0.0.1 --port "$PORT" --createStreamMs 10 --deleteStreamMs 10 --updateStreamMs 10 >"$LOG" 2>&1 &
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
	echo "kinesalite: did not come up on 127.0.0.1:$PORT; see $LOG" >&2
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
		echo "kinesalite: something listens on :$PORT but was not started by this script; left alone" >&2
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
