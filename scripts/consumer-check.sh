#!/usr/bin/env bash
# Checks the module boundaries as a user sees them: a scratch module that
# imports only the core and the SQLite store must not have the AWS SDK,
# NATS, pgx, the MySQL driver or cobra in its module graph. Run from
# anywhere; needs the Go module proxy (or a warm module cache).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat >go.mod <<MOD
module example.com/consumer

go 1.26.0

require github.com/eventsource-go/eventsource v0.0.0

replace github.com/eventsource-go/eventsource => $root
MOD
cat >main.go <<'GO'
package main

import (
	"context"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/storeurl"
)

func main() {
	s, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		panic(err)
	}
	defer s.Close()
	_ = projection.NewSubscription(s)
	_ = eventsource.Any
	_ = storeurl.Schemes()
}
GO
GOWORK=off GOFLAGS=-mod=mod go mod tidy >/dev/null
modules="$(GOWORK=off go list -m all)"
heavy="$(grep -E 'aws|nats-io|jackc|go-sql-driver|cobra' <<<"$modules" || true)"
echo "consumer-check: a module importing the core and SQLite has $(wc -l <<<"$modules") modules in its graph"
if [ -n "$heavy" ]; then
	echo "consumer-check: it should have no driver or CLI module, but has:" >&2
	echo "$heavy" >&2
	exit 1
fi
GOWORK=off go build ./...
echo "consumer-check: none of AWS, NATS, pgx, MySQL or cobra; it builds"
