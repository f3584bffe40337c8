"""``octoroute check`` on configs whose values once crashed the checker: one listed problem per
bad value, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octoroute.config.template import TEMPLATE

BASE_URL = 'base_url = "http://your-server:8000/v1"'


def test_check_lists_a_malformed_ipv6_base_url_and_exits_2_without_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ipv6.toml"
    assert BASE_URL in TEMPLATE
    path.write_text(TEMPLATE.replace(BASE_URL, 'base_url = "http://[zz::1]:80/v1"', 1))

    result = subprocess.run(
        [sys.executable, "-m", "octoroute", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "models.fast[0].base_url: has an invalid host: an IPv6 address must be complete and in "
        'brackets, e.g. http://[::1]:8000/v1, got "http://[zz::1]:80/v1"'
    ) in result.stderr
    assert result.stdout == ""
