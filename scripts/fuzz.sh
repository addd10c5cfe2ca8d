#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module, one after the other, each
# for a while (go test can fuzz only one target of one package at a time).
#
#   ./scripts/fuzz.sh                 # every target, 10s each
#   FUZZTIME=5m ./scripts/fuzz.sh     # longer
#   ./scripts/fuzz.sh ./filestore     # only the targets of some packages
#   ./scripts/fuzz.sh ./filestore FuzzDecodeRecord   # one target
#
# The seed corpora are testdata/fuzz/<FuzzName>/ next to each target, and
# plain `go test` replays them. When fuzzing finds a failing input, go test
# writes it there and this script stops with its error: fix the bug, rename
# the file to regression-<what it is>, and commit it with the fix, so that it
# stays a regression test. Inputs that merely add coverage stay in the build
# cache ($(go env GOCACHE)/fuzz) and are not committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-10s}
pkgs=()
only=""
for arg in "$@"; do
	case "$arg" in
	./* | .) pkgs+=("$arg") ;;
	Fuzz*) only="$arg" ;;
	*)
		echo "fuzz.sh: unknown argument $arg (packages start with ./, targets with Fuzz)" >&2
		exit 2
		;;
	esac
done
if [ ${#pkgs[@]} -eq 0 ]; then
	pkgs=(./...)
fi

ran=0
for pkg in $(go list "${pkgs[@]}"); do
	# -list prints the names of the package's tests, benchmarks, examples
	# and fuzz targets that match; the fuzz targets are the Fuzz* ones.
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in $targets; do
		if [ -n "$only" ] && [ "$target" != "$only" ]; then
			continue
		fi
		printf '\n==> %s %s (%s)\n' "$pkg" "$target" "$fuzztime"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
		ran=$((ran + 1))
	done
done
if [ "$ran" -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matched" >&2
	exit 1
fi
printf '\nfuzz.sh: %d fuzz targets ran %s each without a failure\n' "$ran" "$fuzztime"
