"""The README's Python examples run as written (from a scratch directory holding the fixtures)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path):
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    script = tmp_path / "example.py"
    script.write_text(BLOCKS[index])
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_readme_has_examples():
    assert len(BLOCKS) >= 2
