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
NAME=dynalite
DIR=${DYNALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsource/dynalite}
PORT=${DYNALITE_PORT:-4567}
# No --path: the data lives in memory and is gone when the server stops.
SERVER_ARGS=(--createTableMs 20 --deleteTableMs 20 --updateTableMs 20)

# shellcheck source=lib/npm-server.sh
. "$(dirname "$0")/lib/npm-server.sh"
