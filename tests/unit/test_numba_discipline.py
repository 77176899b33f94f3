"""Every numba function is compiled through groundseg._numba (the one place numba options are set)."""
from __future__ import annotations

import importlib
import os
import pkgutil
import re
from pathlib import Path

import pytest

import groundseg
from groundseg import _numba

PACKAGE = Path(groundseg.__file__).parent


def house_options(dispatcher) -> tuple:
    """(target options, cache class): what a dispatcher was compiled with."""
    return dict(dispatcher.targetoptions), type(dispatcher._cache).__name__


def all_modules():
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="groundseg."):
        if info.name.endswith("__main__"):
            continue
        yield info.name


def test_no_numba_decorator_outside_the_one_place():
    pattern = re.compile(r"numba\.(n?jit|vectorize|guvectorize|cfunc)|^\s*@(n?jit)\b|from numba import .*\bn?jit\b",
                         re.M)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_numba.py":
            continue
        for m in pattern.finditer(path.read_text()):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {m.group(0).strip()}")
    assert not offenders, "numba options set outside groundseg/_numba.py:\n" + "\n".join(offenders)


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no dispatchers with the JIT disabled")
def test_every_dispatcher_has_the_house_options():
    from numba.core.registry import CPUDispatcher
    @_numba.kernel
    def probe(x):
        return x

    @_numba.kernel_fastmath
    def probe_fast(x):
        return x

    @_numba.kernel_inline
    def probe_inline(x):
        return x

    allowed = [house_options(probe), house_options(probe_fast), house_options(probe_inline)]
    assert allowed[0][1] != "NullCache", "the house decorator no longer caches"
    found = 0
    bad = []
    for name in all_modules():
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:   # an optional extra (SoapySDR, sigmf) not installed
            if "groundseg" in str(exc):
                raise
            continue
        for attr, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == name:
                found += 1
                if house_options(obj) not in allowed:
                    bad.append(f"{name}.{attr}: {house_options(obj)}")
    assert found > 10, "no numba kernels found: the scan is broken"
    assert not bad, "kernels compiled with other options:\n" + "\n".join(bad)
