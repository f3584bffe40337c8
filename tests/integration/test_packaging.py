"""``pip install .`` works for a user: the built wheel installs alone and its command runs.

One test does everything once, because building is the slow part (30-90 s): build the sdist and,
from it, the wheel (``python -m build``, as a release would), install the wheel into a fresh
virtual environment with the pinned ``constraints.txt`` (dependencies come from the package index
or pip's cache), then run the installed ``octoroute`` from outside the source tree.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Final

import pytest

from octoroute import __version__

ROOT: Final = Path(__file__).resolve().parents[2]
SRC: Final = ROOT / "src" / "octoroute"
BUILD_TIMEOUT: Final = 300.0
INSTALL_TIMEOUT: Final = 300.0
COMMAND_TIMEOUT: Final = 60.0


def run(argv: list[str | Path], *, timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion, output captured, without the outer venv or source tree leaking."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "OCTOROUTE_LOG"}
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(arg) for arg in argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed step printed, for the assertion message."""
    command = " ".join(str(arg) for arg in result.args)
    return (
        f"`{command}` exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


def only(paths: list[Path], what: str) -> Path:
    assert len(paths) == 1, f"expected one {what}, found {[p.name for p in paths]}"
    return paths[0]


@pytest.mark.timeout(BUILD_TIMEOUT + INSTALL_TIMEOUT + 4 * COMMAND_TIMEOUT)
def test_wheel_and_sdist_build_install_and_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is not installed (it is a dev dependency: make test)")
    dist = tmp_path / "dist"

    built = run(
        [sys.executable, "-m", "build", "--outdir", dist, ROOT], timeout=BUILD_TIMEOUT, cwd=tmp_path
    )
    assert built.returncode == 0, explain(built)
    wheel = only(sorted(dist.glob("*.whl")), "wheel")
    sdist = only(sorted(dist.glob("*.tar.gz")), "sdist")
    assert wheel.name.startswith(f"octoroute-{__version__}-"), wheel.name
    assert sdist.name == f"octoroute-{__version__}.tar.gz", sdist.name

    with tarfile.open(sdist) as archive:
        members = set(archive.getnames())
    prefix = f"octoroute-{__version__}"
    for required in ("src/octoroute/__init__.py", "README.md", "pyproject.toml"):
        assert f"{prefix}/{required}" in members, f"{required} is missing from {sdist.name}"
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    assert "octoroute/__init__.py" in files
    assert "octoroute/cli.py" in files
    assert not any(name.startswith("tests/") for name in files), "tests ship in the wheel"
    keyword_files = sorted((SRC / "routing" / "lexicon").glob("*.toml"))
    assert keyword_files
    for path in keyword_files:
        shipped = f"octoroute/routing/lexicon/{path.name}"
        assert shipped in files, f"the keyword file {path.name} is missing from {wheel.name}"
    for name in ("index.html", "app.js", "style.css", "favicon.svg"):
        assert f"octoroute/ui/{name}" in files, (
            f"the dashboard's {name} is missing from {wheel.name}"
        )

    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", venv], timeout=COMMAND_TIMEOUT, cwd=tmp_path)
    assert created.returncode == 0, explain(created)
    python = venv / "bin" / "python"
    octoroute = venv / "bin" / "octoroute"
    installed = run(
        [python, "-m", "pip", "install", "-c", ROOT / "constraints.txt", wheel],
        timeout=INSTALL_TIMEOUT,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, explain(installed)

    located = run(
        [python, "-c", "import octoroute; print(octoroute.__file__)"],
        timeout=COMMAND_TIMEOUT,
        cwd=tmp_path,
    )
    assert located.returncode == 0, explain(located)
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout

    languages = run(
        [python, "-c", "from octoroute.routing.lexicon import LANGUAGES; print(len(LANGUAGES))"],
        timeout=COMMAND_TIMEOUT,
        cwd=tmp_path,
    )
    assert languages.returncode == 0, explain(languages)
    assert languages.stdout.strip() == str(len(keyword_files)), "keyword files not loaded"

    dashboard = run(
        [python, "-c", "from octoroute.api.ui import load_assets; print(sorted(load_assets()[1]))"],
        timeout=COMMAND_TIMEOUT,
        cwd=tmp_path,
    )
    assert dashboard.returncode == 0, explain(dashboard)
    assert dashboard.stdout.strip() == "['app.js', 'favicon.svg', 'style.css']", "dashboard files"

    version = run([octoroute, "--version"], timeout=COMMAND_TIMEOUT, cwd=tmp_path)
    assert version.returncode == 0, explain(version)
    assert version.stdout.strip() == f"octoroute {__version__}"

    config = tmp_path / "config.toml"
    written = run([octoroute, "config", "-o", config], timeout=COMMAND_TIMEOUT, cwd=tmp_path)
    assert written.returncode == 0, explain(written)
    assert config.is_file()

    checked = run([octoroute, "check", "--config", config], timeout=COMMAND_TIMEOUT, cwd=tmp_path)
    # Valid (the summary is printed), but the template's placeholder hosts are still there.
    assert checked.returncode == 1, explain(checked)
    assert "your-8b-model" in checked.stdout, explain(checked)
    assert "placeholder" in checked.stderr, explain(checked)
