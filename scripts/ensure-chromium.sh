#!/bin/sh
# Make sure Debian's chromium and chromium-driver are installed: the dashboard's browser tests
# (tests/browser) drive a real headless Chromium through Selenium. `make test` runs this first.
# With apt-get and root (or password-less sudo) it installs both packages; otherwise it says what
# to do, and the browser tests skip, naming what is missing.
set -eu

if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
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
		echo "chromium or chromium-driver is missing; installing Debian's packages for the browser tests" >&2
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver fonts-dejavu-core >/dev/null
		exit 0
	fi
fi

echo "warning: chromium and chromium-driver are not installed and cannot be installed here; the" >&2
echo "dashboard's browser tests will skip. Install them (Debian: apt-get install chromium" >&2
echo "chromium-driver) and rerun." >&2
exit 0
