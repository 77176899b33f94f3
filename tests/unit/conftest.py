"""tests/unit: one module at a time, in memory. A unit test that asks for a temporary
directory or the captures belongs in tests/integration (the kinds stay apart)."""
import pytest

FILE_FIXTURES = {"tmp_path", "tmp_path_factory", "tmpdir", "tmpdir_factory", "captures", "fixtures_dir"}


@pytest.fixture(autouse=True)
def _unit_tests_open_no_files(request):
    used = FILE_FIXTURES & set(request.fixturenames)
    if used:
        pytest.fail(f"unit tests open no files: {request.node.name} asks for {', '.join(sorted(used))}; "
                    "move it to tests/integration")
