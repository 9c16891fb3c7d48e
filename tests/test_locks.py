"""The lock files pin what pyproject.toml asks for, and the tests run on what is deployed."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))]


def _pins(lock: str) -> dict[NormalizedName, tuple[Version, int]]:
    """Each pinned package of a lock file: its version and how many hashes it carries."""
    pins: dict[NormalizedName, tuple[Version, int]] = {}
    name: NormalizedName | None = None
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            package, _, version = line.split()[0].partition("==")
            name = canonicalize_name(package)
            pins[name] = (Version(version), 0)
        elif name is not None and line.strip().startswith("--hash=sha256:"):
            pins[name] = (pins[name][0], pins[name][1] + 1)
    return pins


def _wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(line) for line in listed]


@pytest.mark.parametrize(("lock", "extras"), LOCKS)
def test_a_lock_pins_every_dependency_at_a_version_pyproject_allows_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _pins(lock)
    for requirement in _wanted(extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from {lock}: run `make lock`"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name} {version}, outside {requirement.specifier}: run `make lock`"
        )
    assert [name for name, (_version, hashes) in pins.items() if not hashes] == []


def test_the_deployed_lock_holds_no_development_tool() -> None:
    deployed = _pins("requirements.lock")
    for requirement in _wanted(("dev",))[len(_wanted(())) :]:
        assert canonicalize_name(requirement.name) not in deployed


def test_the_tests_run_on_the_versions_that_are_deployed() -> None:
    deployed = {name: version for name, (version, _) in _pins("requirements.lock").items()}
    tested = {name: version for name, (version, _) in _pins("requirements-dev.lock").items()}
    assert {name: tested.get(name) for name in deployed} == deployed
    installed = {name: Version(metadata.version(name)) for name in deployed}
    assert installed == deployed, "the venv is not the lock's: run `make test` (it reinstalls)"
