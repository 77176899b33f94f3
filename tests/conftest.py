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


#: Each test folder is a kind, and each kind a marker (``pytest -m unit``):
#: unit (one module, in memory), integration (files, processes, the CLI, HDF5),
#: real (the real spacecraft captures), reference (the slow references' own checks).
KINDS = ("unit", "integration", "real", "reference")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in KINDS:
            item.add_marker(getattr(pytest.mark, parts[0]))
