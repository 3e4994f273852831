# Sourced by scripts/dynalite.sh and scripts/kinesalite.sh: installs an npm
# server package outside the repo and starts or stops it on loopback. The
# caller sets NAME, VERSION, DIR, PORT and SERVER_ARGS (an array).

BIN="$DIR/node_modules/$NAME/cli.js"
PIDFILE="$DIR/$NAME.pid"
LOG="$DIR/$NAME.log"
# A client that goes away mid-request must not kill the server.
GUARD="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dynalite-guard.js"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

installed() {
	[ -f "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/$NAME/package.json" 2>/dev/null
}

install() {
	if installed; then
		return 0
	fi
	command -v npm >/dev/null || { echo "$NAME: npm not found (Node 18+ is needed)" >&2; exit 1; }
	mkdir -p "$DIR"
	echo "$NAME: installing $NAME@$VERSION into $DIR" >&2
	npm install --silent --no-audit --no-fund --prefix "$DIR" "$NAME@$VERSION" >&2
}

start() {
	if up; then
		echo "http://127.0.0.1:$PORT"
		return 0
	fi
	install
	mkdir -p "$DIR"
	nohup node --require "$GUARD" "$BIN" --host 127.0.0.1 --port "$PORT" "${SERVER_ARGS[@]}" >"$LOG" 2>&1 &
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
	echo "$NAME: did not come up on 127.0.0.1:$PORT; see $LOG" >&2
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
		echo "$NAME: something listens on :$PORT but was not started by this script; left alone" >&2
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
