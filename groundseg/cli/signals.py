"""Stop signals (Ctrl-C, SIGTERM) taken between chunks, for replay and receive."""
from __future__ import annotations


class _StopSignals:
    """Stop signals taken at safe points (:meth:`check`, between chunks), never inside a
    step: a KeyboardInterrupt raised in the middle of an archive write or a numba call left
    archives whose commit log was ahead of the file and, once, a crash; one raised inside
    a finalizer (h5py releases objects in ``__dealloc__``) was lost, and the replay ran to
    its end. The first signal sets :attr:`why` (its name) and calls ``on_first``; a second
    one stops at once."""

    def __init__(self, signals=("SIGINT",), on_first=None):
        self.signals = signals
        self.on_first = on_first
        self.why = ""
        self._old: dict = {}

    def __enter__(self) -> "_StopSignals":
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(getattr(signal, s), self._on_signal) for s in self.signals}
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.why:
            raise KeyboardInterrupt
        import signal
        self.why = signal.Signals(signum).name
        if self.on_first is not None:
            self.on_first()

    def check(self, *_) -> None:
        if self.why:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        import signal
        for s, h in self._old.items():
            signal.signal(getattr(signal, s), h)
