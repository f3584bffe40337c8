#!/bin/sh
# Make sure Debian's chromium and chromium-driver are installed: the dashboard's browser tests
# (tests/integration/test_dashboard_browser.py) drive a real headless Chromium through Selenium.
# `make test` runs this first. With apt-get and root (or password-less sudo) it installs both
# packages; otherwise it says what to do, and the browser tests fail, naming what is missing.
set -eu

if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
	exit 0
fi

echo "chromium or chromium-driver is missing; installing Debian's packages for the browser tests" >&2
if sh "$(dirname "$0")/apt-install.sh" chromium chromium-driver fonts-dejavu-core; then
	exit 0
fi

echo "warning: chromium and chromium-driver are not installed and cannot be installed here; the" >&2
echo "dashboard's browser tests will fail. Install them (Debian: apt-get install chromium" >&2
echo "chromium-driver) and rerun." >&2
exit 0
