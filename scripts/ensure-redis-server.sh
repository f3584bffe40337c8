#!/bin/sh
# Make sure a redis-server binary is installed: the shared-state tests ([state] redis_url) start a
# real one on a free 127.0.0.1 port. `make test` runs this first. With apt-get and root (or
# password-less sudo) it installs Debian's redis-server package; otherwise it says what to do
# and the Redis tests fail loudly (they never skip).
set -eu

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
	exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo -n"
	else
		SUDO="unavailable"
	fi
	if [ "$SUDO" != "unavailable" ]; then
		echo "redis-server is missing; installing Debian's redis-server package for the tests" >&2
		# The package's own service is not used: each test starts a server of its own.
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			redis-server >/dev/null
		exit 0
	fi
fi

echo "warning: redis-server is not installed and cannot be installed here; the shared-state" >&2
echo "tests will fail. Install it (Debian/Ubuntu: apt-get install redis-server) and rerun." >&2
exit 0
