import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def captures_dir() -> Path:
    return Path(os.environ.get("GROUNDSEG_CAPTURES", ROOT.parent / "shared" / "captures" / "real"))


@pytest.fixture(scope="session")
def captures() -> Path:
    """The real-capture folder; tests that need it skip (with the reason) when it is absent."""
    path = captures_dir()
    if not path.is_dir():
        if os.environ.get("GROUNDSEG_REQUIRE_CAPTURES"):
            pytest.fail(f"real captures required but {path} is absent")
        pytest.skip(f"real captures not found at {path} (set GROUNDSEG_CAPTURES)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return ROOT / "fixtures"
