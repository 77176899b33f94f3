"""An IQ source seen through the demodulator: a :class:`~groundseg.sources.base.Source` of soft symbols.

``DemodulatedSource(open_iq(path), settings)`` yields ``kind = "soft"`` chunks (float32,
positive = bit 1) that the soft-symbol path (Viterbi, sync, ...) takes as it takes a soft
symbol file: ``offset`` counts soft symbols in the stream, ``rate`` is soft symbols per
second, ``rx_time`` is the reception time of the chunk's first symbol from the timing
loop (the IQ chunk's stamp + the symbol's sample position / sample rate). A new IQ stream
(``new_stream``) flushes the demodulator, then resets it. ``quality`` keeps the Es/N0 and
lock blocks of every stream with their times, for the pass report.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from groundseg.coding.demod.demodulator import BLOCK_DTYPE, Demodulator
from groundseg.modulation import ModulationSettings
from groundseg.sources.base import Chunk, Source

#: a pass's link-quality rows: BLOCK_DTYPE plus the stream's name index and the UNIX time
QUALITY_DTYPE = np.dtype(BLOCK_DTYPE.descr + [("stream", "<i4"), ("time", "<f8")])


class DemodulatedSource(Source):
    """Soft symbols from an IQ/audio :class:`Source` (``kind = "iq"``)."""

    kind = "soft"

    def __init__(self, source: Source, settings: ModulationSettings, block_samples: int = 1 << 14):
        super().__init__()
        if getattr(source, "kind", "iq") != "iq":
            raise ValueError(f"DemodulatedSource needs an IQ source, not kind {source.kind!r}")
        self.source = source
        self.settings = settings
        self.block_samples = block_samples
        self.name = source.name
        self.demod: Demodulator | None = None
        #: the demodulator of each stream (for sample_of_symbol when frames are annotated)
        self.demods: list[Demodulator] = []
        self._quality: list[np.ndarray] = []
        self._streams: list[str] = []

    @property
    def names(self) -> list[str]:
        return self.source.names

    @property
    def total_bytes(self):
        return self.source.total_bytes

    def report_sections(self) -> dict:
        """The report's ``demodulator``: the demodulator's counts, and lock and Es/N0 over
        the pass (per block: median, lowest, highest of the locked blocks)."""
        q = self.quality
        out = {"scheme": self.settings.scheme, "symbol_rate": self.settings.symbol_rate}
        if self.demods:
            st = [d.stats.to_dict() for d in self.demods]
            for k in ("samples_in", "symbols_out", "blocks", "locked_blocks", "lock_acquisitions",
                      "lock_losses", "nonfinite_samples"):
                out[k] = int(sum(s.get(k, 0) for s in st))
        if len(q) and "esn0_db" in q.dtype.names:
            locked = q[q["locked"]] if "locked" in q.dtype.names else q
            e = locked["esn0_db"][np.isfinite(locked["esn0_db"])] if len(locked) else np.zeros(0)
            out["locked_fraction"] = round(float(len(locked) / len(q)), 4)
            if e.size:
                out["esn0_db"] = {"median": round(float(np.median(e)), 2), "min": round(float(e.min()), 2),
                                  "max": round(float(e.max()), 2)}
        return {"demodulator": out}

    @property
    def quality(self) -> np.ndarray:
        """Every Es/N0 block of every stream so far (:data:`QUALITY_DTYPE`)."""
        return np.concatenate(self._quality) if self._quality else np.zeros(0, QUALITY_DTYPE)

    def chunks(self) -> Iterator[Chunk]:
        soft_per_symbol = 2 if self.settings.bits_per_symbol == 2 else 1
        rate = self.settings.symbol_rate * soft_per_symbol
        demod = None
        origin = math.nan
        fs = 0.0
        out_offset = 0
        first = True
        stream = ""
        clock = "estimated"
        try:
            for c in self.source.chunks():
                if c.new_stream or demod is None:
                    if demod is not None:
                        yield from self._emit(demod, demod.flush(), origin, fs, rate, out_offset, first, stream, clock)
                    fs = float(c.rate) or float(getattr(self.source, "sample_rate", 0.0))
                    if fs <= 0:
                        raise ValueError(f"{c.stream or self.name}: the IQ source gives no sample rate")
                    demod = Demodulator(self.settings, fs, self.block_samples)
                    self.demod = demod
                    self.demods.append(demod)
                    origin = c.rx_time - c.offset / fs if math.isfinite(c.rx_time) else math.nan
                    out_offset, first, stream, clock = 0, True, c.stream, c.clock
                    self._streams.append(stream)
                    self.stats.streams += 1
                soft = demod.push(c.data)
                # the report's input figures are the recording's
                self.stats.bytes_in = self.source.stats.bytes_in
                self.stats.truncated_bytes = self.source.stats.truncated_bytes
                self.stats.outages = self.source.stats.outages
                for chunk in self._emit(demod, soft, origin, fs, rate, out_offset, first, stream, clock):
                    out_offset += chunk.data.shape[0]
                    first = False
                    yield chunk
            if demod is not None:
                yield from self._emit(demod, demod.flush(), origin, fs, rate, out_offset, first, stream, clock)
        finally:
            self.source.close()

    def _emit(self, demod, soft, origin, fs, rate, offset, first, stream, clock):
        q = demod.last_blocks
        if q.shape[0]:
            rows = np.zeros(q.shape[0], QUALITY_DTYPE)
            for name in BLOCK_DTYPE.names:
                rows[name] = q[name]
            rows["stream"] = len(self._streams) - 1
            rows["time"] = origin + q["sample"] / fs
            self._quality.append(rows)
        if not soft.shape[0]:
            return
        per = 2 if self.settings.bits_per_symbol == 2 else 1
        t = origin + float(demod.sample_of_symbol(offset // per)) / fs
        self.stats.chunks += 1
        yield Chunk(soft, "soft", rx_time=t, offset=offset, rate=rate, new_stream=first, stream=stream, clock=clock)

    def close(self) -> None:
        self.source.close()
