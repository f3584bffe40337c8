#!/bin/sh
# Install Debian packages for the tests when apt-get can be run as root (directly or through
# password-less sudo): `sh scripts/apt-install.sh PACKAGE...`. Exits 0 once installed, and 1
# without saying anything when it cannot install here (no apt-get, no root), so the caller can
# say what its tests will do without them.
set -eu

command -v apt-get >/dev/null 2>&1 || exit 1
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO="sudo -n"
else
	exit 1
fi
# A package's own service, if it has one, is not used: the tests start what they need.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
