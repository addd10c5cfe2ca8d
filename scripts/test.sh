#!/usr/bin/env bash
# test.sh is the project's one test command (the README's): it installs what
# the tests need when it is missing, then runs go vet, a gofmt check and the
# whole test suite under the race detector.
#
#   ./scripts/test.sh                      # everything
#   ./scripts/test.sh -run TestRestart     # extra flags go to `go test`
#   ./scripts/test.sh -v ./cmd/demo        # arguments starting with ./ are
#                                          # packages, replacing ./...
#
# It assumes only Go and bash. Missing tools are installed with apt-get (sudo
# when not root): a C compiler for -race, redis-server (scripts/install-redis.sh)
# and, once the Express interop tests exist, their Node packages. With CI=true
# every test must run: a missing dependency fails instead of skipping.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CI-friendly settings: no prompts from apt or git, and full goroutine dumps
# if a test panics or times out. (An installed Go older than go.mod's go line
# fetches the right toolchain by itself, GOTOOLCHAIN=auto being the default.)
export DEBIAN_FRONTEND=noninteractive
export GIT_TERMINAL_PROMPT=0
export GOTRACEBACK=all

step() { printf '\n==> %s\n' "$*"; }

ci() { [ "${CI:-}" = "true" ]; }

# apt_install installs Debian packages, using sudo only when not root.
apt_install() {
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "go version"
go version

# The race detector is built with cgo, so it needs a C compiler; Go turns cgo
# off when it finds none, and -race then fails to build.
have_cc() { command -v "$(go env CC | cut -d' ' -f1)" >/dev/null 2>&1; }
race=(-race)
if ! have_cc; then
	step "installing a C compiler for the race detector"
	if command -v apt-get >/dev/null 2>&1 && apt_install gcc libc6-dev && have_cc; then
		:
	elif ci; then
		echo "test.sh: no C compiler ($(go env CC)) and none could be installed; go test -race needs one" >&2
		exit 1
	else
		echo "test.sh: WARNING: no C compiler ($(go env CC)); running the tests WITHOUT the race detector" >&2
		race=()
	fi
fi
if [ ${#race[@]} -gt 0 ]; then
	export CGO_ENABLED=1
else
	export CGO_ENABLED=0 # nothing here needs cgo but -race
fi

if [ -f scripts/install-redis.sh ]; then
	step "redis-server (for redisstore's tests)"
	if ! bash scripts/install-redis.sh; then
		if ci; then
			exit 1
		fi
		echo "test.sh: WARNING: redis-server could not be installed; redisstore's tests will skip" >&2
	fi
fi

# --- Node packages for the Express interop tests (testdata/express) --------
if [ -f testdata/express/package.json ]; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		step "installing Node.js and npm (for the Express interop tests)"
		if ! { command -v apt-get >/dev/null 2>&1 && apt_install nodejs npm; }; then
			if ci; then
				echo "test.sh: node/npm missing and could not be installed" >&2
				exit 1
			fi
			echo "test.sh: WARNING: node/npm missing; the Express interop tests will skip" >&2
		fi
	fi
	if command -v npm >/dev/null 2>&1; then
		step "npm ci (testdata/express)"
		(cd testdata/express && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi
# ---------------------------------------------------------------------------

step "go vet ./..."
go vet ./...

step "gofmt"
unformatted=$(gofmt -l . | grep -v -e '^testdata/express/node_modules/' || true)
if [ -n "$unformatted" ]; then
	echo "test.sh: these files are not gofmt'ed (run gofmt -w on them):" >&2
	echo "$unformatted" >&2
	exit 1
fi

# Arguments that name packages (./x, ./x/...) replace the default ./...;
# everything else is passed to go test as flags.
pkgs=(./...)
for arg in "$@"; do
	case "$arg" in
	./* | .) pkgs=() ;;
	esac
done

# Fuzz every fuzz target briefly (FUZZTIME, default 10s each) under CI, or
# when FUZZ=1; plain go test below replays the committed corpora anyway.
if ci || [ "${FUZZ:-}" = "1" ]; then
	step "fuzz (scripts/fuzz.sh, ${FUZZTIME:-10s} per target)"
	bash scripts/fuzz.sh
fi

step "go test ${race[*]} -count=1 $* ${pkgs[*]}"
go test "${race[@]}" -count=1 "$@" "${pkgs[@]}"
