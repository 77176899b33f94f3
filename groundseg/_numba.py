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

#: Same, for a helper a hot loop calls once per item (a packet, a codeword): numba
#: inlines it into its caller's IR. LLVM inlines small helpers on its own, but one that
#: copies and stores enough stays a call, whose dozens of array-struct arguments cost more
#: than the work (the packet extractor's ``_emit``: 33.7 -> 27.5 ms for 478,375 packets).
kernel_inline = numba.njit(cache=True, nogil=True, inline="always")
