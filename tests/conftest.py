"""Shared test fixtures: paths to the project's sample data and the read-only shared data."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED = REPO.parent / "shared"
REAL_TRASH = SHARED / "real-trash"
EXTERNAL = SHARED / "external"


def need(path: Path) -> Path:
    """Skip (loudly) when a shared file is absent; CI has ../shared beside the clone."""
    if not path.exists():
        pytest.skip(f"missing shared data: {path}")
    return path
