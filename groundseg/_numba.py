"""The one place where numba options are set.

Every hot kernel in groundseg is decorated with :data:`kernel`, so caching,
GIL release and fastmath policy are decided here and nowhere else. Setting
``NUMBA_DISABLE_JIT=1`` runs every kernel as plain Python (used by the test
suite to measure coverage and to compare with the reference implementations).
"""
from __future__ import annotations

import numba

#: Decorator for chunk kernels: compiled once, cached on disk, GIL released so
#: several streams (or a Dask worker's threads) decode in parallel.
kernel = numba.njit(cache=True, nogil=True)

#: Same, for kernels whose float reductions may be reordered (never used where
#: bit-exact results matter).
kernel_fastmath = numba.njit(cache=True, nogil=True, fastmath=True)
