"""IQ and audio sources: SigMF recordings, raw IQ files, WAV audio, live SDRs (SoapySDR).

Every source here yields chunks of ``kind = "iq"``: complex64 samples, or float32 for a
real signal (WAV audio from a radio's FM or SSB output, SigMF ``rf32``/``ri16``), with
``rate`` the sample rate and ``offset`` the sample index in the stream. Integer formats
are scaled to about +-1 (ci16 / 32768, cu8 (x - 127.5) / 128, ci8 / 128).

- :class:`IQFile`: raw interleaved IQ (``cf32``, ``ci16``, ``cu8``, ``ci8``) with the sample
  rate (and centre frequency) given by the caller;
- :class:`WavFile`: 16-bit PCM mono through the stdlib ``wave`` module;
- :class:`SigMFRecording`: a SigMF pair read through the ``sigmf`` package (datatype,
  sample rate, centre frequency, annotations), checked against its data file;
- :class:`SoapySource`: a live SDR through SoapySDR (optional; imported when used);
- :func:`open_iq` picks one from a path; :func:`write_sigmf` writes a recording (the
  simulator) and :func:`annotate_sigmf` writes decoded frames back as annotations.
"""
from __future__ import annotations

import json
import math
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from groundseg.errors import GroundsegError
from groundseg.sources.base import Chunk, Source

DEFAULT_CHUNK_SAMPLES = 1 << 18


class IQError(GroundsegError, ValueError):
    """An IQ or audio recording that cannot be used (bad format, metadata that disagrees with
    its data, an unsupported datatype, no SDR driver)."""


#: raw sample formats: name -> (numpy dtype of one component, components per sample)
FORMATS = {
    "cf32": (np.dtype("<f4"), 2), "ci16": (np.dtype("<i2"), 2), "cu8": (np.dtype("u1"), 2),
    "ci8": (np.dtype("i1"), 2), "rf32": (np.dtype("<f4"), 1), "ri16": (np.dtype("<i2"), 1),
}
#: SigMF ``core:datatype`` -> our format name (little-endian and byte formats only)
SIGMF_DATATYPES = {"cf32_le": "cf32", "ci16_le": "ci16", "cu8": "cu8", "ci8": "ci8",
                   "rf32_le": "rf32", "ri16_le": "ri16"}
_SIGMF_OF = {v: k for k, v in SIGMF_DATATYPES.items()}


def sample_size(fmt: str) -> int:
    dt, comps = FORMATS[fmt]
    return dt.itemsize * comps


def convert(raw: np.ndarray, fmt: str) -> np.ndarray:
    """Bytes (uint8 array of whole samples) -> complex64 (IQ formats) or float32 (real)."""
    dt, comps = FORMATS[fmt]
    v = raw.view(dt)
    if fmt == "rf32":
        return np.array(v, np.float32)
    if fmt == "ri16":
        return v.astype(np.float32) * np.float32(1 / 32768)
    if fmt == "cf32":
        return np.array(v.view(np.complex64))
    f = v.astype(np.float32)
    if fmt == "ci16":
        f *= np.float32(1 / 32768)
    elif fmt == "cu8":
        f = (f - np.float32(127.5)) * np.float32(1 / 128)
    else:
        f *= np.float32(1 / 128)
    return f.view(np.complex64)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise IQError(f"unsupported sample format {fmt!r} (supported: {', '.join(FORMATS)})")
    return fmt


class _SampleFile(Source):
    """A file of fixed-size samples read in chunks (the common part of the file sources)."""

    kind = "iq"

    def __init__(self, path, fmt: str, sample_rate: float, data_offset: int = 0, sample_count: int | None = None,
                 chunk_samples: int = DEFAULT_CHUNK_SAMPLES, time_origin: float | None = None,
                 center_frequency: float = 0.0):
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)
        self.fmt = _check_format(fmt)
        if not sample_rate or sample_rate <= 0 or not math.isfinite(sample_rate):
            raise IQError(f"{self.path}: the sample rate must be positive, not {sample_rate!r}")
        if chunk_samples <= 0:
            raise ValueError("chunk_samples must be positive")
        self.sample_rate = float(sample_rate)
        self.center_frequency = float(center_frequency)
        self.chunk_samples = int(chunk_samples)
        self.data_offset = int(data_offset)
        size = self.path.stat().st_size - self.data_offset
        self.sample_bytes = sample_size(fmt)
        avail = max(size, 0) // self.sample_bytes
        self.sample_count = avail if sample_count is None else int(sample_count)
        self.stats.truncated_bytes = max(size, 0) - avail * self.sample_bytes
        self._origin = time_origin
        self._file = None

    @property
    def real(self) -> bool:
        return FORMATS[self.fmt][1] == 1

    @property
    def duration(self) -> float:
        return self.sample_count / self.sample_rate

    @property
    def total_bytes(self) -> int:
        return self.sample_count * self.sample_bytes

    def time_origin(self) -> float:
        if self._origin is not None:
            return float(self._origin)
        return self.path.stat().st_mtime - self.duration

    def chunks(self) -> Iterator[Chunk]:
        origin = self.time_origin()
        self.stats.streams += 1
        self._file = self._open()
        try:
            pos = 0
            while pos < self.sample_count:
                n = min(self.chunk_samples, self.sample_count - pos)
                raw = np.frombuffer(self._file.read(n * self.sample_bytes), np.uint8)
                n = raw.size // self.sample_bytes
                if n == 0:
                    break
                data = self._convert(raw[: n * self.sample_bytes])
                self.stats.bytes_in += n * self.sample_bytes
                self.stats.chunks += 1
                yield Chunk(data, "iq", rx_time=origin + pos / self.sample_rate, offset=pos,
                            rate=self.sample_rate, new_stream=pos == 0, stream=self.name, clock="estimated")
                pos += n
        finally:
            self.close()

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        return convert(raw, self.fmt)

    def _open(self):
        f = open(self.path, "rb")
        f.seek(self.data_offset)
        return f

    def read(self) -> np.ndarray:
        """The whole recording at once (tests, the quicklook)."""
        parts = [c.data for c in self.chunks()]
        if parts:
            return np.concatenate(parts)
        return np.zeros(0, np.float32 if self.real else np.complex64)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class IQFile(_SampleFile):
    """A raw IQ file (``cf32``, ``ci16``, ``cu8``, ``ci8``; or real ``rf32``/``ri16``) with the
    sample rate given, since the file does not say. A partial trailing sample is counted in
    ``stats.truncated_bytes`` and ignored."""

    def __init__(self, path, fmt: str, sample_rate: float, center_frequency: float = 0.0, **kw):
        path = Path(path)
        if not path.is_file():
            raise IQError(f"{path}: no such IQ file")
        super().__init__(path, fmt, sample_rate, center_frequency=center_frequency, **kw)


class WavFile(_SampleFile):
    """16-bit PCM mono WAV audio (a radio's FM or SSB output) as a real signal (float32).

    ``sample_rate``: the rate the caller expects (the mission's), checked against the
    file's; None accepts the file's own."""

    def __init__(self, path, sample_rate: float | None = None, **kw):
        path = Path(path)
        if not path.is_file():
            raise IQError(f"{path}: no such WAV file")
        try:
            with wave.open(str(path), "rb") as w:
                channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        except (wave.Error, EOFError) as e:
            raise IQError(f"{path}: not a PCM WAV file ({e})") from None
        if channels != 1:
            raise IQError(f"{path}: {channels} audio channels; a mono recording is needed "
                          f"(take one channel first, e.g. sox in.wav out.wav remix 1)")
        if width != 2:
            raise IQError(f"{path}: {8 * width}-bit samples; 16-bit PCM is supported")
        if sample_rate is not None and abs(float(sample_rate) - rate) > 1e-6 * rate:
            raise IQError(f"{path}: sample rate {rate} Hz, but {sample_rate:g} Hz was expected")
        super().__init__(path, "ri16", rate, sample_count=frames, **kw)
        self.stats.truncated_bytes = 0

    def _open(self):
        return _WaveReader(wave.open(str(self.path), "rb"))


class _WaveReader:
    """``read(nbytes)`` and ``close()`` over the frames of a ``wave`` reader."""

    def __init__(self, w):
        self.w = w

    def read(self, nbytes: int) -> bytes:
        return self.w.readframes(nbytes // 2)

    def close(self) -> None:
        self.w.close()


class SigMFRecording(_SampleFile):
    """A SigMF recording (``x.sigmf-meta`` + ``x.sigmf-data``; either path may be given).

    The metadata is read and validated by the ``sigmf`` package; then checked against the
    data file: the datatype must be one of :data:`SIGMF_DATATYPES`, one channel, the data a
    whole number of samples, captures and annotations inside the data and a declared
    ``core:sample_count`` (if any) equal to the data's. ``sample_rate``, ``center_frequency``
    (first capture's ``core:frequency``), ``datatype`` and ``annotations`` are exposed."""

    def __init__(self, path, **kw):
        meta, data = sigmf_paths(path)
        if not meta.is_file():
            raise IQError(f"{meta}: no such SigMF metadata file")
        if not data.is_file():
            raise IQError(f"{data}: the SigMF data file is missing")
        _import_sigmf()
        try:
            with open(meta) as f:
                md = json.load(f)
        except (OSError, ValueError) as e:
            raise IQError(f"{meta}: not JSON ({e})") from None
        g = md.get("global", {}) if isinstance(md, dict) else {}
        datatype = g.get("core:datatype")
        if datatype not in SIGMF_DATATYPES:
            raise IQError(f"{meta}: unsupported core:datatype {datatype!r} "
                          f"(supported: {', '.join(SIGMF_DATATYPES)})")
        if int(g.get("core:num_channels", 1)) != 1:
            raise IQError(f"{meta}: {g.get('core:num_channels')} channels; one is supported")
        rate = g.get("core:sample_rate")
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise IQError(f"{meta}: core:sample_rate missing or not positive ({rate!r})")
        fmt = SIGMF_DATATYPES[datatype]
        header = int(g.get("core:header_bytes", 0) or 0)
        captures = md.get("captures", []) or []
        for c in captures:
            header = int(c.get("core:header_bytes", header) or header)
        size = data.stat().st_size - header
        ss = sample_size(fmt)
        if size % ss:
            raise IQError(f"{data}: {size} bytes is not a whole number of {datatype} samples "
                          f"({ss} bytes each): the data does not match the metadata's datatype")
        count = size // ss
        declared = g.get("core:sample_count")
        if declared is not None and int(declared) != count:
            raise IQError(f"{meta}: core:sample_count {declared} but the data holds {count} samples")
        for c in captures:
            if int(c.get("core:sample_start", 0)) > count:
                raise IQError(f"{meta}: a capture starts at sample {c['core:sample_start']}, "
                              f"beyond the data's {count} samples")
        self.annotations = list(md.get("annotations", []) or [])
        for a in self.annotations:
            end = int(a.get("core:sample_start", 0)) + int(a.get("core:sample_count", 0))
            if end > count:
                raise IQError(f"{meta}: an annotation ends at sample {end}, beyond the data's {count} samples")
        try:
            from sigmf import sigmffile
            handle = sigmffile.fromfile(str(meta), skip_checksum=False)
        except Exception as e:  # noqa: BLE001 - the package's own complaint, as one line
            raise IQError(f"{meta}: invalid SigMF ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        self.meta_path = meta
        self.datatype = datatype
        self.handle = handle
        self.metadata = md
        center = float(captures[0].get("core:frequency", 0.0)) if captures else 0.0
        origin = kw.pop("time_origin", None)
        if origin is None and captures and captures[0].get("core:datetime"):
            origin = _parse_datetime(captures[0]["core:datetime"])
        super().__init__(data, fmt, float(rate), data_offset=header, sample_count=count,
                         time_origin=origin, center_frequency=center, **kw)


def _parse_datetime(s: str) -> float | None:
    from datetime import datetime
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _import_sigmf():
    try:
        import sigmf
    except ImportError:
        raise IQError("SigMF recordings need the sigmf package: pip install 'groundseg[sdr]'") from None
    return sigmf


def sigmf_paths(path) -> tuple[Path, Path]:
    """(meta, data) paths of a SigMF recording from either file or the base name."""
    p = Path(path)
    name = p.name
    for suffix in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if name.endswith(suffix):
            base = p.with_name(name[: -len(suffix)])
            break
    else:
        base = p
    return base.with_name(base.name + ".sigmf-meta"), base.with_name(base.name + ".sigmf-data")


def open_iq(path, fmt: str | None = None, sample_rate: float | None = None, **kw) -> _SampleFile:
    """The source for an IQ or audio recording: SigMF by its suffix, WAV by ``.wav``, else
    a raw file that needs ``fmt`` and ``sample_rate``."""
    p = Path(path)
    if p.name.endswith((".sigmf-meta", ".sigmf-data", ".sigmf")):
        return SigMFRecording(p, **kw)
    if p.suffix.lower() == ".wav":
        return WavFile(p, sample_rate=sample_rate, **kw)
    if fmt is None or sample_rate is None:
        raise IQError(f"{p}: a raw IQ file needs its format ({', '.join(FORMATS)}) and sample rate")
    return IQFile(p, fmt, sample_rate, **kw)


class IQFiles(Source):
    """Several IQ or audio recordings as one pass, each its own stream (``new_stream`` at each
    file's first chunk); ``fmt``/``sample_rate`` for raw files, as :func:`open_iq` takes them."""

    kind = "iq"

    def __init__(self, paths, fmt: str | None = None, sample_rate: float | None = None, **kw):
        super().__init__()
        self.files = [open_iq(p, fmt=fmt, sample_rate=sample_rate, **kw) for p in paths]
        if not self.files:
            raise IQError("no recording given")
        self.name = self.files[0].name

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.total_bytes for f in self.files)

    def chunks(self) -> Iterator[Chunk]:
        for f in self.files:
            for c in f.chunks():
                self._sum()
                yield c
            self._sum()

    def _sum(self) -> None:
        st = self.stats
        st.bytes_in = sum(f.stats.bytes_in for f in self.files)
        st.chunks = sum(f.stats.chunks for f in self.files)
        st.streams = sum(f.stats.streams for f in self.files)
        st.truncated_bytes = sum(f.stats.truncated_bytes for f in self.files)

    def close(self) -> None:
        for f in self.files:
            f.close()


def write_sigmf(path, samples: np.ndarray, sample_rate: float, center_frequency: float = 0.0,
                datatype: str = "cf32_le", description: str = "", annotations: list | None = None,
                datetime_utc: str | None = None) -> Path:
    """Write ``samples`` as a SigMF recording (``path`` is the base name or either file);
    returns the metadata path. complex samples as cf32_le/ci16_le/cu8/ci8, real as rf32_le/ri16_le."""
    sigmf = _import_sigmf()
    from sigmf import SigMFFile
    if datatype not in SIGMF_DATATYPES:
        raise IQError(f"unsupported SigMF datatype {datatype!r} (supported: {', '.join(SIGMF_DATATYPES)})")
    fmt = SIGMF_DATATYPES[datatype]
    meta, data = sigmf_paths(path)
    x = np.asarray(samples)
    if fmt == "cf32":
        raw = x.astype(np.complex64)
    elif fmt == "rf32":
        raw = x.astype("<f4")
    elif fmt == "ri16":
        raw = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    else:
        inter = np.empty(2 * x.shape[0], np.float64)
        inter[0::2], inter[1::2] = x.real, x.imag
        if fmt == "ci16":
            raw = np.clip(np.round(inter * 32768), -32768, 32767).astype("<i2")
        elif fmt == "ci8":
            raw = np.clip(np.round(inter * 128), -128, 127).astype("i1")
        else:
            raw = np.clip(np.round(inter * 128 + 127.5), 0, 255).astype("u1")
    data.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(data)
    glob = {"core:datatype": datatype, "core:sample_rate": float(sample_rate),
            "core:description": description or "groundseg", "core:generator": "groundseg"}
    handle = SigMFFile(data_file=str(data), global_info=glob)
    cap = {"core:frequency": float(center_frequency)}
    if datetime_utc:
        cap["core:datetime"] = datetime_utc
    handle.add_capture(0, metadata=cap)
    for a in annotations or []:
        handle.add_annotation(int(a["sample_start"]), int(a["sample_count"]), metadata=_annotation_meta(a))
    handle.tofile(str(meta), overwrite=True)
    del sigmf
    return meta


def _annotation_meta(a: dict) -> dict:
    md = {}
    if a.get("label"):
        md["core:label"] = str(a["label"])
    if a.get("comment"):
        md["core:comment"] = str(a["comment"])
    for k, v in a.items():
        if ":" in k:
            md[k] = v
    return md


def annotate_sigmf(path, frames: list[dict]) -> int:
    """Write decoded frames back into a SigMF recording's metadata as annotations.

    ``frames``: dicts with ``sample_start``, ``sample_count`` and optionally ``label``,
    ``comment`` and namespaced keys. Existing annotations are kept; the file is rewritten
    through the ``sigmf`` package (which validates it). Returns the annotations written."""
    _import_sigmf()
    from sigmf import sigmffile
    meta, _ = sigmf_paths(path)
    handle = sigmffile.fromfile(str(meta), skip_checksum=True)
    n = handle.sample_count if hasattr(handle, "sample_count") else None
    written = 0
    for a in frames:
        start, count = int(a["sample_start"]), int(a["sample_count"])
        if start < 0 or count <= 0 or (n is not None and start + count > n):
            continue
        handle.add_annotation(start, count, metadata=_annotation_meta(a))
        written += 1
    handle.tofile(str(meta), overwrite=True)
    return written


def frame_annotations(bit_positions, frame_bits: int, symbols_per_bit: float = 2.0, sample_of_symbol=None,
                      samples_per_symbol: float | None = None, label: str = "frame", comments=None) -> list[dict]:
    """SigMF annotations for frames found at ``bit_positions`` of the decoded bit stream.

    Decoded bit b came from symbol ``b * symbols_per_bit`` (2 at rate 1/2, 1 uncoded);
    ``sample_of_symbol``: the demodulator's map from symbols to input samples
    (``Demodulator.sample_of_symbol``, from its timing loop), or else the nominal
    ``samples_per_symbol``. ``comments``: one string per frame (e.g. VC and counters)."""
    b = np.asarray(bit_positions, np.float64)
    if sample_of_symbol is None:
        if not samples_per_symbol:
            raise ValueError("frame_annotations needs sample_of_symbol or samples_per_symbol")
        sample_of_symbol = lambda s: np.asarray(s, np.float64) * samples_per_symbol
    first = np.asarray(sample_of_symbol(b * symbols_per_bit), np.float64)
    last = np.asarray(sample_of_symbol((b + frame_bits) * symbols_per_bit), np.float64)
    out = []
    for i in range(b.size):
        start = max(int(np.floor(first[i])), 0)
        out.append({"sample_start": start, "sample_count": max(int(np.ceil(last[i])) - start, 1), "label": label,
                    "comment": comments[i] if comments is not None else f"{label} at decoded bit {int(b[i])}"})
    return out


class SoapySource(Source):
    """A live SDR through SoapySDR: complex64 chunks stamped with the host clock.

    SoapySDR is optional and imported here; without it, :class:`IQError` says how to get it.
    ``duration``: seconds to receive (None: until :meth:`stop`)."""

    kind = "iq"

    def __init__(self, device: str = "", sample_rate: float = 1e6, center_frequency: float = 0.0,
                 gain: float | None = None, chunk_samples: int = 1 << 16, duration: float | None = None,
                 channel: int = 0):
        super().__init__()
        try:
            import SoapySDR
        except ImportError:
            raise IQError("live SDR input needs SoapySDR and its Python bindings "
                          "(e.g. apt install python3-soapysdr soapysdr-module-rtlsdr)") from None
        self._soapy = SoapySDR
        self.name = f"soapy:{device}"
        self.sample_rate = float(sample_rate)
        self.center_frequency = float(center_frequency)
        self.chunk_samples = int(chunk_samples)
        self.duration = duration
        self._stop = False
        try:
            self.dev = SoapySDR.Device(device)
            self.dev.setSampleRate(SoapySDR.SOAPY_SDR_RX, channel, self.sample_rate)
            self.dev.setFrequency(SoapySDR.SOAPY_SDR_RX, channel, self.center_frequency)
            if gain is not None:
                self.dev.setGain(SoapySDR.SOAPY_SDR_RX, channel, float(gain))
            self.stream = self.dev.setupStream(SoapySDR.SOAPY_SDR_RX, SoapySDR.SOAPY_SDR_CF32, [channel])
        except Exception as e:  # noqa: BLE001 - a busy or absent device is one line
            raise IQError(f"SDR {device!r}: cannot open ({e})") from None

    def stop(self) -> None:
        self._stop = True

    def chunks(self) -> Iterator[Chunk]:
        S = self._soapy
        self.dev.activateStream(self.stream)
        self.stats.streams += 1
        start = time.time()
        pos = 0
        buf = np.empty(self.chunk_samples, np.complex64)
        try:
            while not self._stop and (self.duration is None or time.time() - start < self.duration):
                sr = self.dev.readStream(self.stream, [buf], buf.shape[0], timeoutUs=1_000_000)
                if sr.ret <= 0:
                    if sr.ret in (S.SOAPY_SDR_TIMEOUT, S.SOAPY_SDR_OVERFLOW):
                        continue
                    raise IQError(f"{self.name}: read failed ({S.errToStr(sr.ret)})")
                now = time.time()
                n = sr.ret
                self.stats.bytes_in += 8 * n
                self.stats.chunks += 1
                yield Chunk(buf[:n].copy(), "iq", rx_time=now - n / self.sample_rate, offset=pos,
                            rate=self.sample_rate, new_stream=pos == 0, stream=self.name, clock="host")
                pos += n
        finally:
            self.dev.deactivateStream(self.stream)

    def close(self) -> None:
        if getattr(self, "stream", None) is not None:
            try:
                self.dev.closeStream(self.stream)
            except Exception:  # noqa: BLE001
                pass
            self.stream = None


__all__ = [
    "FORMATS",
    "SIGMF_DATATYPES",
    "IQError",
    "IQFile",
    "IQFiles",
    "SigMFRecording",
    "SoapySource",
    "WavFile",
    "annotate_sigmf",
    "convert",
    "frame_annotations",
    "open_iq",
    "sigmf_paths",
    "write_sigmf",
]
