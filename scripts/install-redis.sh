#!/usr/bin/env bash
# install-redis.sh makes sure redis-server is on PATH, for the redisstore
# tests and benchmarks (which start their own throwaway server).
#
# It is idempotent: when redis-server is already on PATH it does nothing, so
# the test command can run it every time. Otherwise it installs Debian's
# redis-server package (which brings redis-cli too), running apt-get update
# once first because a fresh machine's package lists may be empty or stale.
# sudo is used only when not already root, so it also works in CI containers
# that have no sudo.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-redis.sh: redis-server is missing and apt-get is not available;" >&2
	echo "install redis-server with your package manager, or set REDIS_URL" >&2
	exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null

# The Debian package starts a system service on port 6379; the tests never
# use it (they pick a free port), so it is harmless and left alone.
command -v redis-server >/dev/null
redis-server --version
