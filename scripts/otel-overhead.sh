#!/usr/bin/env bash
# Instructions per memory-store append, plain and through esotel's
# decorator with no OpenTelemetry SDK installed, counted by valgrind's
# callgrind (exact where timings on a shared machine vary by ±15%). Each
# side runs 1 and N+1 appends; the difference over N is one append.
set -euo pipefail
cd "$(dirname "$0")/../esotel"
n=20000
bin="$(mktemp -d)/esotel.test"
go test -c -o "$bin" .
count() { # benchmark, appends
	out="$(mktemp)"
	GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 GOGC=off valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "^$1\$" -test.benchtime "$2x" >/dev/null 2>"$out"
	grep -o 'Collected : [0-9]*' "$out" | grep -o '[0-9]*$'
}
for ev in small typical; do
	p1=$(count "BenchmarkAppendPlain/$ev" 1); pn=$(count "BenchmarkAppendPlain/$ev" $((n + 1)))
	i1=$(count "BenchmarkAppendInstrumented/$ev" 1); ix=$(count "BenchmarkAppendInstrumented/$ev" $((n + 1)))
	awk -v ev="$ev" -v n="$n" -v p1="$p1" -v pn="$pn" -v i1="$i1" -v ix="$ix" 'BEGIN {
		p = (pn - p1) / n; i = (ix - i1) / n
		printf "%-8s plain %7.0f  instrumented %7.0f instructions/append  overhead %+.0f (%.2f%%)\n", ev, p, i, i - p, (i - p) / p * 100 }'
done
