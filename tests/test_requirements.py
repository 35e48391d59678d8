"""Dependency floors that exist for security: checkpoints and JSON files are untrusted input."""
from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

# package -> (lowest safe release, why)
SECURITY_FLOORS = {
    "torch": ("2.10", "weights_only=True bypassable up to 2.5.1 (CVE-2025-32434); memory "
                      "corruption below 2.10 (CVE-2026-24747)"),
    "orjson": ("3.9.15", "crashes on deeply nested input below 3.9.15 (CVE-2024-27454)"),
}


def _requirements() -> dict[str, Requirement]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    parsed = [Requirement(line.split("#")[0].strip()) for line in lines
              if line.split("#")[0].strip() and not line.startswith("-")]
    return {r.name.lower(): r for r in parsed}


@pytest.mark.parametrize("package", sorted(SECURITY_FLOORS))
def test_requirements_admit_no_release_below_the_security_floor(package):
    floor, why = SECURITY_FLOORS[package]
    requirement = _requirements()[package]
    below = Version(floor).release[:-1] + (Version(floor).release[-1] - 1,)
    unsafe = Version(".".join(map(str, below)))
    assert not requirement.specifier.contains(unsafe, prereleases=True), f"{requirement}: {why}"
    assert requirement.specifier.contains(Version(floor), prereleases=True)


@pytest.mark.parametrize("package", sorted(SECURITY_FLOORS))
def test_installed_release_is_above_the_floor(package):
    try:
        installed = Version(importlib.metadata.version(package))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{package} is not installed")
    floor, why = SECURITY_FLOORS[package]
    assert installed >= Version(floor), f"{package} {installed}: {why}"
