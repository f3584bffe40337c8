#!/bin/sh
# Make sure a redis-server binary is installed: the shared-state tests ([state] redis_url) start a
# real one on a free 127.0.0.1 port. `make test` runs this first. With apt-get and root (or
# password-less sudo) it installs Debian's redis-server package; otherwise it says what to do
# and the Redis tests fail loudly (they never skip).
set -eu

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
	exit 0
fi

echo "redis-server is missing; installing Debian's redis-server package for the tests" >&2
# The package's own service is not used: each test starts a server of its own.
if sh "$(dirname "$0")/apt-install.sh" redis-server; then
	exit 0
fi

echo "warning: redis-server is not installed and cannot be installed here; the shared-state" >&2
echo "tests will fail. Install it (Debian/Ubuntu: apt-get install redis-server) and rerun." >&2
exit 0
