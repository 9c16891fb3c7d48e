"""A wheel of the gateway, installed into a fresh venv, works from any directory.

The wheel is built from a copy of the sources (so the checkout is not written to) and
installed without its dependencies, which the fresh venv reads from the test's own venv
by a plain path entry: the checkout's editable install is not visible there, so every
`paygo` below runs the installed package and its package data (flows, migrations).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from paygo.settings import VARIABLES

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


class Installed:
    """A fresh venv holding the gateway's wheel, and a folder outside the checkout."""

    def __init__(self, root: Path) -> None:
        self.venv = root / "venv"
        self.home = root / "home"
        self.elsewhere = root / "elsewhere"
        self.home.mkdir()
        self.elsewhere.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        """An environment holding none of our settings, with its own home folder."""
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in VARIABLES and not k.startswith(("XDG_", "VIRTUAL_ENV", "PYTHON"))
        }
        return {**base, "HOME": str(self.home), **extra}

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run a program of the venv from the folder outside the checkout."""
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.elsewhere,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode == 0, done.stderr
        return done.stdout


def _sources(into: Path) -> Path:
    """Copy what the wheel is built from (the links to flows/ and migrations/ as links)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "instance")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, into / name)
    for name in ("app", "flows", "migrations"):
        shutil.copytree(REPO / name, into / name, symlinks=True, ignore=ignore)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    (root / "src").mkdir()
    source = _sources(root / "src")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist")]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (root / "dist").glob("paygo_gateway-*.whl")
    place = Installed(root)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(place.venv)], check=True)
    install = [*pip, "--python", str(place.venv / "bin" / "python"), "install", "--no-deps"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    fresh = place.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    dependencies = sysconfig.get_paths()["purelib"]
    (fresh / "site-packages" / "_dependencies.pth").write_text(dependencies + "\n")
    yield place


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    where = installed.ok("python", "-c", "import paygo; print(paygo.__file__)").strip()
    assert where.startswith(str(installed.venv)), where
    data = "import importlib.resources as r; print(sorted(p.name for p in r.files('paygo')"
    listed = installed.ok("python", "-c", data + ".joinpath('flows').iterdir()))")
    assert listed.strip() == "['sms.yaml', 'texts.yaml', 'ussd.yaml']"


def test_paygo_help_and_version_work_from_any_directory(installed: Installed) -> None:
    shown = installed.ok("paygo", "--help")
    assert "accounts" in shown and "payments" in shown
    assert installed.ok("paygo", "--version").strip() == "paygo, version 0.1.0"


def test_paygo_flows_check_reads_the_shipped_flows(installed: Installed) -> None:
    checked = installed.ok("paygo", "flows", "check", "--json")
    report = json.loads(checked)
    assert report["ok"] is True
    assert report["directory"].startswith(str(installed.venv))


def test_db_upgrade_and_demo_use_a_database_in_the_users_data_folder(
    installed: Installed,
) -> None:
    upgraded = json.loads(installed.ok("paygo", "db", "upgrade", "--json"))
    database = installed.home / ".local" / "share" / "paygo" / "paygo.sqlite3"
    assert upgraded["database"] == f"sqlite:///{database}"
    assert database.is_file()
    loaded = json.loads(installed.ok("paygo", "demo", "--json"))
    assert len(loaded["accounts"]) == 4
    shown = json.loads(installed.ok("paygo", "accounts", "show", loaded["accounts"][0], "--json"))
    assert shown["plan"] == "Solar Home 80W"
    site = installed.venv / "lib"
    assert not list(site.rglob("*.sqlite3")) and not list(site.rglob("instance"))


def test_an_explicit_database_and_the_wsgi_app_work_when_installed(
    installed: Installed, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'explicit.sqlite3'}"
    installed.ok("paygo", "db", "upgrade", DATABASE_URL=url)
    assert (tmp_path / "explicit.sqlite3").is_file()
    # The Procfile's web process imports paygo.wsgi from the installed package.
    served = "from paygo.wsgi import app; print(app.test_client().get('/healthz').status_code)"
    assert installed.ok("python", "-c", served, DATABASE_URL=url).strip() == "200"
