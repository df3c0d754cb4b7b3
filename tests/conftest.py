"""Shared test fixtures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.npz from this run")


@pytest.fixture
def golden(request):
    """golden(name, **arrays): compare arrays with tests/golden/<name>.npz (or rewrite it)."""

    def check(name: str, **arrays: np.ndarray) -> None:
        path = GOLDEN_DIR / f"{name}.npz"
        if request.config.getoption("--update-golden"):
            np.savez_compressed(path, **arrays)
            return
        assert path.exists(), f"{path} is missing: run pytest --update-golden once and commit it"
        stored = np.load(path)
        assert sorted(stored.files) == sorted(arrays)
        for key, value in arrays.items():
            # the same machine kind gives bit-identical runs; allow only float noise across CPUs
            np.testing.assert_allclose(value, stored[key], rtol=0, atol=1e-6, err_msg=f"{name}:{key}")

    return check
