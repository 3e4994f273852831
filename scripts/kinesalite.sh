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
NAME=kinesalite
DIR=${KINESALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsource/kinesalite}
PORT=${KINESALITE_PORT:-4568}
SERVER_ARGS=(--createStreamMs 10 --deleteStreamMs 10 --updateStreamMs 10)

# shellcheck source=lib/npm-server.sh
. "$(dirname "$0")/lib/npm-server.sh"
