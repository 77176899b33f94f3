"""The spacecraft simulator: a simulated downlink and the truth a correct decoder must reach.

The mirror image of the decoding chain, composed from the encoders that sit beside
their decoders: Space Packets (CCSDS 133.0-B) with CUC/CDS time codes (301.0-B) ->
M_PDU packet zones -> TM (132.0-B) or AOS (732.0-B) transfer frames with CLCW
(232.0-B), insert zone and FECF -> Reed-Solomon, pseudo-randomiser and ASM
(131.0-B) -> channel impairments. Everything is built with numpy over whole arrays
(all packets of an APID at once, all frames at once; byte copies in small numba
kernels). Python loops run over impairment events, and over codeblocks only in the
receiver model of a stream disturbed by slips or garbage (~0.1 s per 20,000 CADUs).

The truth (``SimulatedDownlink.truth``, written as ``FILE.truth.json``) uses the
keys of DESIGN.md's report JSON and counts what a correct decoder must count given
the impairments. Conventions the counts rest on (each matches the decoder's rule):

- Sync: the receiver is modelled as ``groundseg.coding.sync.FrameSync`` with the
  settings the channel decoder gives it (search with verification of the next
  marker, lock within +-``spacing_tolerance`` bits, on a miss an immediate resync on
  a verified marker up to one CADU ahead (a lock loss), else ``flywheel`` blind
  codeblocks, then search). The simulator keeps every marker
  it sends within ``asm_max_bit_errors`` and makes sure no garbage or prefix bits
  resemble a marker, so the codeblocks a receiver finds follow from the marker
  positions alone. Flywheel codeblocks (misaligned) count as RS-uncorrectable.
- Reed-Solomon: a codeword with at most E symbol errors is corrected (that many
  symbols counted), one with more is uncorrectable. Errors are placed by the
  simulator, so it knows every codeword's error count; a decoder that
  miscorrects a codeword beyond E (probability ~1e-13 for E=16, ~2e-5 for E=8)
  would differ.
- Packets: a packet is delivered when every frame carrying its bytes is delivered;
  ``dropped_incomplete`` counts packets whose 6-byte header was delivered but not
  the rest. Idle packets (APID 0x7FF) count in ``idle_packets`` when delivered whole.
- ``exact`` is False (with ``notes`` saying why) where a count cannot be predicted:
  bit errors on a link without Reed-Solomon or FECF, or flywheel codeblocks on a
  link without Reed-Solomon.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from groundseg._numba import kernel
from groundseg.coding import crc, sync
from groundseg.coding.channel import ChannelConfig, ChannelDecoder, ChannelEncoder
from groundseg.link import aos, clcw, packets as pk, timecodes, tm

LEVELS = ("bits", "frames", "packets")
IDLE_APID = 0x7FF
IDLE_FILL = 0x55
SEQ_MODULUS = 1 << 14
#: frames a packets-only mission (no [link]) is counted in
NOMINAL_FRAME_LENGTH = 1024
#: nominal link rate when the mission does not give one: times need a clock
DEFAULT_BIT_RATE = 1_000_000.0
#: onboard clock at the first frame: 2026-01-01T00:00:00Z, shifted by up to a day per seed
CLOCK_START = 1767225600.0


# ----------------------------------------------------------------------------- API types

@dataclass(frozen=True)
class Impairments:
    """What the channel does to the downlink (level "bits" unless noted).

    - ``bit_error_rate``: random bit errors over the codeblocks (level "frames": over the
      frames). Markers get them too, capped at the link's ``asm_max_bit_errors``.
    - ``byte_errors_per_codeword``: exactly this many byte (symbol) errors in every RS
      codeword of a ``byte_error_fraction`` of the codeblocks (0..E corrects, E+1 does not).
    - ``lost_frames``: CADUs (level "frames": frames) dropped; shows as counter gaps.
      Chosen where no packet's primary header is split by the loss, so the count of
      dropped packets does not depend on how a decoder treats half a header.
    - ``bit_slips``: that many places between CADUs where 1..``slip_bits`` bits are
      inserted or deleted.
    - ``garbage_bytes``: that many insertions of 1..``garbage_length`` random bytes
      between CADUs (never resembling the marker).
    - ``inverted``: every bit inverted (BPSK phase ambiguity); ``polarity_flips``: that
      many flips of polarity at CADU boundaries.
    - ``bit_offset``: the stream starts this many random bits before the first marker.
    - ``truncate_last``: the last CADU (or frame record) is cut short.
    """
    bit_error_rate: float = 0.0
    byte_errors_per_codeword: int = 0
    byte_error_fraction: float = 1.0
    lost_frames: int = 0
    bit_slips: int = 0
    slip_bits: int = 1
    garbage_bytes: int = 0
    garbage_length: int = 64
    inverted: bool = False
    polarity_flips: int = 0
    bit_offset: int = 0
    truncate_last: bool = False

    def __post_init__(self):
        if not 0.0 <= self.bit_error_rate <= 0.1:
            raise ValueError(f"bit_error_rate must be in 0..0.1, got {self.bit_error_rate}")
        if not 0.0 <= self.byte_error_fraction <= 1.0:
            raise ValueError(f"byte_error_fraction must be in 0..1, got {self.byte_error_fraction}")
        for name in ("byte_errors_per_codeword", "lost_frames", "bit_slips", "garbage_bytes",
                     "polarity_flips", "bit_offset"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.slip_bits < 1:
            raise ValueError(f"slip_bits must be >= 1, got {self.slip_bits}")
        if self.garbage_length < 1:
            raise ValueError(f"garbage_length must be >= 1, got {self.garbage_length}")

    @property
    def any(self) -> bool:
        return self != Impairments()

    def channel_only(self) -> list[str]:
        """Names of the impairments set here that exist only on a bit stream."""
        names = ("byte_errors_per_codeword", "bit_slips", "garbage_bytes", "inverted",
                 "polarity_flips", "bit_offset")
        return [n for n in names if getattr(self, n)]


@dataclass
class SimulatedDownlink:
    """A simulated capture and what a correct decoder must make of it."""
    capture: bytes
    truth: dict
    level: str
    frames: np.ndarray | None = None     # the transmitted frames (n, frame_length), before impairments
    packets: dict = field(default_factory=dict)  # apid -> (flat uint8, starts int64) as generated

    def write(self, path: str | Path) -> Path:
        """Write the capture to ``path`` and the truth to ``path``.truth.json."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.capture)
        Path(str(path) + ".truth.json").write_text(json.dumps(self.truth, indent=1, sort_keys=True) + "\n")
        return path


# ----------------------------------------------------------------------------- kernels

@kernel
def _scatter(src, src_off, lengths, dst, dst_off):
    """Copy variable-length pieces: dst[dst_off[i]:+lengths[i]] = src[src_off[i]:+lengths[i]]."""
    for i in range(lengths.shape[0]):
        s = src_off[i]
        d = dst_off[i]
        for j in range(lengths[i]):
            dst[d + j] = src[s + j]


@kernel
def _put_rows(flat, starts, rows):
    """flat[starts[i]:starts[i] + k] = rows[i] for (n, k) ``rows``."""
    k = rows.shape[1]
    for i in range(rows.shape[0]):
        s = starts[i]
        for j in range(k):
            flat[s + j] = rows[i, j]


@kernel
def _put_bits(body, values, bit_offset, bit_length):
    """OR ``bit_length``-bit big-endian values into each row of ``body`` at ``bit_offset``."""
    one = np.uint64(1)
    for i in range(body.shape[0]):
        v = values[i]
        for k in range(bit_length):
            bit = (v >> np.uint64(bit_length - 1 - k)) & one
            if bit:
                pos = bit_offset + k
                body[i, pos >> 3] |= np.uint8(0x80 >> (pos & 7))


@kernel
def _concat_bits(rows, row_bits, ins, ins_off, ins_bits, out):
    """Row i of ``rows`` (its first row_bits[i] bits), preceded by insertion i (ins_bits[i]
    bits from ins[ins_off[i]:]), all back to back at bit granularity into zeroed ``out``.
    Returns the bit position where each row starts."""
    n = rows.shape[0]
    starts = np.empty(n, np.int64)
    p = 0
    for i in range(n + 1):
        # insertion before row i (the one after the last row is a tail, never used here)
        if i < n:
            nb = ins_bits[i]
            base = ins_off[i]
            for b in range(nb):
                if (ins[base + (b >> 3)] >> (7 - (b & 7))) & 1:
                    out[(p + b) >> 3] |= np.uint8(0x80 >> ((p + b) & 7))
            p += nb
            starts[i] = p
            nb = row_bits[i]
            s = p & 7
            k = p >> 3
            full = nb >> 3
            if s == 0:
                for j in range(full):
                    out[k + j] = rows[i, j]
            else:
                for j in range(full):
                    v = np.uint16(rows[i, j])
                    out[k + j] |= np.uint8(v >> np.uint16(s))
                    out[k + j + 1] |= np.uint8((v << np.uint16(8 - s)) & np.uint16(0xFF))
            for b in range(full * 8, nb):
                if (rows[i, b >> 3] >> (7 - (b & 7))) & 1:
                    out[(p + b) >> 3] |= np.uint8(0x80 >> ((p + b) & 7))
            p += nb
    return starts


# ----------------------------------------------------------------------------- mission view

def _load(mission):
    if isinstance(mission, (str, Path)):
        from groundseg.mission import load_mission
        return load_mission(mission)
    return mission


def _seconds_since_epoch(t: np.ndarray, epoch_iso: str, scale: str | None) -> np.ndarray:
    """UNIX seconds -> the count a time code holds: the inverse of ``timecodes.to_unix``
    (a TAI count from the CCSDS epoch includes the leap seconds)."""
    t = np.asarray(t, np.float64)
    epoch = timecodes.iso_to_unix(epoch_iso)
    if scale is None:
        scale = "tai" if epoch == timecodes.iso_to_unix(timecodes.CCSDS_EPOCH) else "utc"
    if scale == "tai":
        i = np.searchsorted(timecodes._LEAP_UTC, t, side="right") - 1
        t = t + np.where(i >= 0, timecodes._LEAP_DAT[np.maximum(i, 0)], timecodes._LEAP_DAT[0])
    return t - epoch


def _time_code_bytes(tc, apid_def, t: np.ndarray) -> np.ndarray:
    """(n, tc.length) uint8: the APID's CUC or CDS time code (301.0-B) of UNIX times ``t``."""
    epoch = getattr(apid_def, "epoch", timecodes.CCSDS_EPOCH) if apid_def is not None else timecodes.CCSDS_EPOCH
    s = _seconds_since_epoch(t, epoch, getattr(apid_def, "time_scale", None))
    ccsds = timecodes.iso_to_unix(epoch) == timecodes.iso_to_unix(timecodes.CCSDS_EPOCH)
    if tc.kind == "cuc":
        s = np.mod(s, 256.0 ** tc.coarse)      # short coarse fields wrap, as on board
        return timecodes.encode_cuc(s, tc.coarse, tc.fine, pfield=tc.pfield, code_id=1 if ccsds else 2)
    code = timecodes.encode_cds(s, tc.day_bytes * 8, tc.subms_bytes)
    if tc.pfield:
        # P-field: CDS id 100, epoch (0: 1958, 1: agency), day segment, sub-ms resolution
        p = (0b100 << 4) | ((0 if ccsds else 1) << 3) | ((tc.day_bytes == 3) << 2) | (tc.subms_bytes // 2)
        code = np.concatenate([np.full((code.shape[0], 1), p, np.uint8), code], axis=1)
    return code


def _be_bytes(values: np.ndarray, nbytes: int) -> np.ndarray:
    """(n,) unsigned -> (n, nbytes) big-endian (low bytes kept)."""
    b = np.asarray(values, np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    if nbytes <= 8:
        return b[:, 8 - nbytes:]
    return np.concatenate([np.zeros((b.shape[0], nbytes - 8), np.uint8), b], axis=1)


@dataclass
class _Apid:
    apid: int
    vcid: int
    definition: object            # ccsdspy FixedLength or None
    length: int | None            # fixed whole-packet length, or None (variable)
    mean_length: int
    time_code: object
    apid_def: object              # the mission's ApidDef (epoch, time scale), or None
    weight: float                 # relative packet rate


@dataclass
class _Plan:
    """The mission, reduced to what the simulator needs (defaults where it says nothing)."""
    name: str
    scid: int
    link: object
    frame_type: str
    frame_length: int
    vcs: dict                     # vcid -> (data, ocf)
    packet_vcs: list
    idle_vcid: int | None
    apids: list
    bit_rate: float


def _plan(mission, rng: np.random.Generator) -> _Plan:
    link = mission.link
    if link is None:
        # a packets-only mission: packets are still cut into (never sent) nominal TM frames,
        # which sets how many there are and where idle packets would go
        from groundseg.mission import LinkSettings
        link = LinkSettings(frame_length=NOMINAL_FRAME_LENGTH, reed_solomon="none", randomized=False)
    ft = link.frame_type
    vcs = {}
    for vcid, vc in sorted(mission.virtual_channels.items()):
        ocf = link.ocf if (ft == "TM" or vc.ocf is None) else bool(vc.ocf)
        vcs[vcid] = (vc.data, ocf)
    if ft == "TM":
        idle = link.idle_vcid
        if idle is None:
            idle = 7 if 7 not in vcs else None
    else:
        idle = link.idle_vcid if link.idle_vcid is not None else aos.IDLE_VCID
    if not vcs or (mission.apids and not any(d == "packets" for v, (d, _) in vcs.items() if v != idle)):
        # a mission that lists no packet VC still downlinks its APIDs somewhere
        free = [v for v in range(8 if ft == "TM" else 63) if v not in vcs and v != idle]
        vcs[free[0]] = ("packets", link.ocf)
    if idle is not None and idle not in vcs:
        vcs[idle] = ("none", link.ocf)
    packet_vcs = [v for v, (d, _) in vcs.items() if d == "packets" and v != idle]
    apids = []
    defs = sorted(mission.apids.items())
    if not defs and packet_vcs:
        defs = [(100 + i, None) for i in range(3)]
    for i, (apid, a) in enumerate(defs):
        definition = getattr(a, "packet_definition", None) if a is not None else None
        variable = getattr(a, "variable", False) if a is not None else False
        if variable:
            definition = None  # variable ccsdspy layouts: random payloads of plausible length
        length = getattr(a, "packet_length", None) if definition is not None else None
        tc = getattr(a, "time_code", None) if a is not None else None
        min_len = 7 if tc is None else tc.offset + tc.length + 1
        if length is None:
            mean = int(rng.integers(max(min_len, 24), 600))
        else:
            mean = int(length)
        if not packet_vcs:
            break
        apids.append(_Apid(apid=int(apid), vcid=packet_vcs[i % len(packet_vcs)], definition=definition,
                           length=None if length is None else int(length), mean_length=max(mean, min_len + 8),
                           time_code=tc, apid_def=a,
                           weight=float(np.exp(rng.uniform(0.0, math.log(10.0))))))
    return _Plan(name=mission.name, scid=int(mission.spacecraft_id or 0), link=link, frame_type=ft,
                 frame_length=int(link.frame_length), vcs=vcs, packet_vcs=packet_vcs, idle_vcid=idle,
                 apids=apids, bit_rate=float(link.bit_rate or 0) or DEFAULT_BIT_RATE)


def channel_config(link) -> ChannelConfig:
    """The channel coding of a mission's [link] (the same mapping the pipeline makes)."""
    asm = str(link.asm)
    return ChannelConfig(frame_length=link.frame_length, asm=int(asm, 16), asm_bits=len(asm) * 4,
                         asm_max_bit_errors=link.asm_max_bit_errors, randomized=link.randomized,
                         derandomize=link.derandomize, reed_solomon=link.reed_solomon,
                         interleave=link.interleave, dual_basis=link.dual_basis, fecf=link.fecf,
                         bit_rate=float(link.bit_rate or 0))


# ----------------------------------------------------------------------------- packets

def _expanded_fields(definition) -> list[tuple]:
    """(name, data_type, bit_length, bit_offset or None, byte_order) with arrays expanded."""
    out = []
    for f in definition._fields:
        shape = getattr(f, "_array_shape", None)
        count = 1
        if isinstance(shape, tuple):
            count = int(np.prod(shape))
        elif isinstance(shape, int):
            count = shape
        for i in range(count):
            off = None if f._bit_offset is None else f._bit_offset + i * f._bit_length
            out.append((f"{f._name}[{i}]" if count > 1 else f._name, f._data_type, int(f._bit_length),
                        off, f._byte_order))
    return out


def _field_offsets(fields: list[tuple], packet_length: int) -> list[int]:
    """Bit offsets (from the packet start) as ccsdspy's fixed-length decoder places them."""
    body_bytes = sum(f[2] for f in fields) // 8
    counter = max(0, (packet_length - body_bytes) * 8)
    offsets = []
    for i, (_, _, bits, off, _) in enumerate(fields):
        if i == 0 and off is not None:
            offsets.append(off)
            counter = off + bits
        elif off is None:
            offsets.append(counter)
            counter += bits
        else:
            offsets.append(off)
            counter = max(off + bits, counter) if off < counter else off + bits
    return offsets


def _noise(rng, n: int, scale: float) -> np.ndarray:
    """Cheap zero-mean noise (uniform, standard deviation ``scale``)."""
    return (rng.random(n, dtype=np.float32) - np.float32(0.5)) * np.float32(scale * 3.4641)


#: engineering ranges by unit, so calibrated housekeeping looks like housekeeping
UNIT_RANGES = {"v": (0.0, 40.0), "mv": (0.0, 5000.0), "a": (0.0, 5.0), "ma": (0.0, 2000.0),
               "degc": (-20.0, 45.0), "c": (-20.0, 45.0), "k": (250.0, 320.0), "%": (0.0, 100.0),
               "rpm": (-3000.0, 3000.0), "rad/s": (-0.05, 0.05), "deg/s": (-3.0, 3.0),
               "deg": (-180.0, 180.0), "w": (0.0, 60.0), "pa": (0.0, 2.0e6), "bar": (0.0, 20.0)}


def _waveform(rng, kind: str, bits: int, t: np.ndarray, i: np.ndarray, meta=None) -> np.ndarray:
    """Plausible housekeeping values for one field, as raw unsigned ``bits``-bit words.

    ``meta`` (the mission's FieldMeta: units, calibration "poly:a0,a1"): a field with a
    known unit gets a sine within that unit's usual range, mapped back through a linear
    calibration to raw counts; other fields get sines, ramps, counters, modes or flags
    spanning their bit width."""
    n = t.shape[0]
    mask = (1 << bits) - 1 if bits < 64 else (1 << 64) - 1
    shape = rng.integers(4)
    period = rng.uniform(60.0, 5400.0)
    phase = rng.uniform(0, 2 * np.pi)
    # float32 is plenty for a waveform and twice as fast as float64
    wave = np.sin(((t - CLOCK_START) * (2 * np.pi / period) + phase).astype(np.float32))
    units = (getattr(meta, "units", "") or "").strip().lower()
    eng = UNIT_RANGES.get(units)
    if kind == "float":
        lo, hi = eng if eng else (-1.0, 1.0)
        level, amp = lo + (hi - lo) * rng.uniform(0.3, 0.7), (hi - lo) * rng.uniform(0.05, 0.25)
        x = (level + amp * wave + _noise(rng, n, amp * 0.01)).astype(np.float64)
        if bits == 16:
            return x.astype(">f2").view(">u2").astype(np.uint64)
        if bits == 32:
            return x.astype(">f4").view(">u4").astype(np.uint64)
        return x.astype(">f8").view(">u8").astype(np.uint64)
    if bits == 1:
        return ((i // int(rng.integers(5, 200))) & 1).astype(np.uint64)
    signed = kind == "int"
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, mask)
    poly = _linear_calibration(meta)
    if eng and poly and bits <= 52:
        # a sine in engineering units, turned into counts through the calibration
        a0, a1 = poly
        e_lo, e_hi = eng
        level, amp = e_lo + (e_hi - e_lo) * rng.uniform(0.3, 0.7), (e_hi - e_lo) * rng.uniform(0.05, 0.25)
        x = (level + amp * wave.astype(np.float64) + _noise(rng, n, amp * 0.02) - a0) / a1
        v = np.clip(np.rint(x), lo, hi).astype(np.int64)
        return (v.astype(np.uint64) & np.uint64(mask))
    if bits > 52 or shape == 1:      # counters and ramps wrap within the field
        step = int(rng.integers(1, 4))
        start = int(rng.integers(0, 1 << min(bits, 62)))
        return ((start + step * i.astype(np.uint64)) & np.uint64(mask)).astype(np.uint64)
    if shape == 2 and bits <= 8:     # a mode / enum: slowly changing small values
        v = (i // int(rng.integers(20, 500))) % int(rng.integers(2, min(8, 1 << bits) + 1))
        return v.astype(np.uint64)
    mid = (lo + hi) / 2 if not signed else rng.uniform(lo, hi) * 0.2
    amp = (hi - lo) * rng.uniform(0.05, 0.35)
    x = mid + amp * wave.astype(np.float64) + _noise(rng, n, amp * 0.02 + 0.3)
    v = np.clip(np.rint(x), lo, hi).astype(np.int64)
    return (v.astype(np.uint64) & np.uint64(mask)) if bits < 64 else v.astype(np.uint64)


def _linear_calibration(meta) -> tuple[float, float] | None:
    """(a0, a1) of a "poly:a0,a1" calibration with a1 != 0, else None."""
    cal = getattr(meta, "calibration", None)
    if not cal or not str(cal).lower().startswith("poly:"):
        return None
    try:
        c = [float(x) for x in str(cal)[5:].split(",")]
    except ValueError:
        return None
    if len(c) == 1:
        return None
    if len(c) > 2 and any(c[2:]):
        return None
    return (c[0], c[1]) if c[1] else None


def _fill_fields(rng, body: np.ndarray, fields: list[tuple], offsets: list[int], t, i,
                 meta: dict | None = None) -> dict:
    """Write every field of a fixed-length definition into rows of ``body`` (the whole packet).

    Returns {field name: raw unsigned words written} (str fields: their bytes)."""
    n = body.shape[0]
    written = {}
    for (name, dtype, bits, _, order), off in zip(fields, offsets):
        if off < 48 or off + bits > body.shape[1] * 8 or dtype == "fill":
            continue                 # primary header fields, or beyond the packet: not ours
        if dtype == "str":
            nb = bits // 8
            text = np.frombuffer((name.upper().encode() * (nb // max(len(name), 1) + 1))[:nb], np.uint8)
            vals = np.zeros((n, nb), np.uint8)
            vals[:] = text
            if off % 8 == 0:
                body[:, off // 8: off // 8 + nb] = vals
                written[name] = vals
            continue
        v = _waveform(rng, dtype, bits, t, i, (meta or {}).get(name.split("[")[0]))
        written[name] = v
        if off % 8 == 0 and bits % 8 == 0:
            nb = bits // 8
            be = _be_bytes(v, nb)
            if order == "little":
                be = be[:, ::-1]
            elif order not in ("big", None) and order.isdigit():
                be = be[:, [int(d) - 1 for d in order]]
            body[:, off // 8: off // 8 + nb] = be
        else:
            _put_bits(body, np.ascontiguousarray(v, np.uint64), np.int64(off), np.int64(bits))
    return written


def _make_packets(rng, a: _Apid, n: int, times: np.ndarray, seq0: int):
    """All ``n`` packets of one APID: (flat uint8, lengths int64)."""
    tc = a.time_code
    sec_hdr = 1 if tc is not None or a.definition is not None else 0
    if a.length is not None:
        lengths = np.full(n, a.length, np.int64)
        body = np.zeros((n, a.length), np.uint8)
        if a.definition is not None:
            fields = _expanded_fields(a.definition)
            _fill_fields(rng, body, fields, _field_offsets(fields, a.length), times, np.arange(n),
                         getattr(a.apid_def, "fields", None))
        flat = body.reshape(-1)
    else:
        lo = max(7 if tc is None else tc.offset + tc.length + 1, a.mean_length // 2)
        hi = max(lo + 1, a.mean_length * 3 // 2)
        lengths = rng.integers(lo, hi + 1, n).astype(np.int64)
        flat = rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8)
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    hdr = pk.pack_primary_headers(a.apid, (seq0 + np.arange(n)) % SEQ_MODULUS, lengths - 7, sec_hdr=sec_hdr)
    _put_rows(flat, starts, hdr)
    if tc is not None:
        code = _time_code_bytes(tc, a.apid_def, times)
        _put_rows(flat, starts + tc.offset, np.ascontiguousarray(code))
    return flat, lengths


# ----------------------------------------------------------------------------- frames

def _zone_layout(plan: _Plan, vcid: int) -> tuple[int, int]:
    """(first byte, length) of the packet zone (TM data field / AOS M_PDU packet zone)."""
    link = plan.link
    data, ocf = plan.vcs[vcid]
    tail = (4 if ocf else 0) + (2 if link.fecf else 0)
    if plan.frame_type == "TM":
        start = 6 + link.tm_secondary_header
    else:
        start = 6 + (2 if link.fhec else 0) + link.insert_zone + (2 if data == "packets" else 0)
    return start, plan.frame_length - start - tail


def _vc_stream(rng, plan: _Plan, vcid: int, n_frames: int, duration: float, t0: float, flush: float):
    """A VC's packet stream cut to exactly n_frames packet zones, with idle packets where
    the spacecraft had nothing to send (after a ``flush`` fraction of the packets) and at
    the end.

    Returns (stream, starts, apids, seqs, lengths, {apid: (flat, lengths) as generated});
    idle packets have APID 0x7FF."""
    _, zone = _zone_layout(plan, vcid)
    mine = [a for a in plan.apids if a.vcid == vcid]
    capacity = n_frames * zone
    if not mine or n_frames == 0:
        mine = []
    # packet rates scaled so the VC is a little over-subscribed (the tail is not sent)
    byte_rate = sum(a.weight * a.mean_length for a in mine) or 1.0
    scale = 1.05 * capacity / (byte_rate * duration) if mine else 0.0
    src, src_len, t_all, apid_all, seq_all, per_apid = [], [], [], [], [], {}
    for a in mine:
        rate = a.weight * scale
        n = int(math.ceil(rate * duration)) + 1
        phase = rng.uniform(0, 1)
        times = t0 + (phase + np.arange(n)) / rate
        seq0 = int(rng.integers(SEQ_MODULUS))
        flat, lengths = _make_packets(rng, a, n, times, seq0)
        per_apid[a.apid] = (flat, lengths)
        src.append(flat)
        src_len.append(lengths)
        t_all.append(times)
        apid_all.append(np.full(n, a.apid, np.int64))
        seq_all.append((seq0 + np.arange(n)) % SEQ_MODULUS)
    if mine:
        flat_all = np.concatenate(src)
        lengths = np.concatenate(src_len)
        src_off = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1], out=src_off[1:])
        order = np.argsort(np.concatenate(t_all), kind="stable")
        lengths, src_off = lengths[order], src_off[order]
        apids = np.concatenate(apid_all)[order]
        seqs = np.concatenate(seq_all)[order]
    else:
        flat_all = np.zeros(0, np.uint8)
        lengths = src_off = apids = seqs = np.zeros(0, np.int64)
    m = len(lengths)
    # segments end at flush points; each is padded to a zone boundary with one idle packet
    flush_after = rng.random(m) < flush
    seg = np.zeros(m, np.int64)
    if m:
        seg[1:] = np.cumsum(flush_after[:-1])
    end_in_seg = np.cumsum(lengths) - np.concatenate([[0], np.cumsum(lengths)])[
        np.searchsorted(seg, seg, side="left")] if m else lengths
    room = (-end_in_seg) % zone
    pad = np.where((room > 0) & (room < 7), room + zone, room)
    seg_len = np.zeros(int(seg[-1]) + 1 if m else 0, np.int64)
    if m:
        last_of_seg = np.flatnonzero(np.r_[seg[1:] != seg[:-1], True])
        seg_len[:] = end_in_seg[last_of_seg] + pad[last_of_seg]
    seg_start = np.zeros_like(seg_len)
    if len(seg_len):
        np.cumsum(seg_len[:-1], out=seg_start[1:])
    # the stream ends after the last packet whose own closing idle packet still fits
    end_if_flushed = (seg_start[seg] + end_in_seg + pad) if m else np.zeros(0, np.int64)
    fits = np.flatnonzero(end_if_flushed <= capacity)
    keep = int(fits[-1]) + 1 if len(fits) else 0
    lengths, src_off, apids, seqs = lengths[:keep], src_off[:keep], apids[:keep], seqs[:keep]
    seg, end_in_seg, pad = seg[:keep], end_in_seg[:keep], pad[:keep]
    dst = (seg_start[seg] + end_in_seg - lengths) if keep else np.zeros(0, np.int64)
    if keep:
        # one idle packet closes each segment (the last kept packet closes the final one)
        closes = np.r_[seg[1:] != seg[:-1], True] & (pad > 0)
        idle_pos = (dst + lengths)[closes]
        idle_len = pad[closes]
        filled = int(dst[-1] + lengths[-1] + pad[-1])
    else:
        idle_pos = idle_len = np.zeros(0, np.int64)
        filled = 0
    extra = (capacity - filled) // zone
    if extra > 0:
        idle_pos = np.r_[idle_pos, filled + zone * np.arange(extra)]
        idle_len = np.r_[idle_len, np.full(extra, zone)]
    idle_pos = idle_pos.astype(np.int64)
    idle_len = idle_len.astype(np.int64)
    stream = np.full(capacity, IDLE_FILL, np.uint8)
    if len(idle_pos):
        hdr = pk.pack_primary_headers(IDLE_APID, 0, idle_len - 7)
        _put_rows(stream, idle_pos, hdr)
    _scatter(flat_all, src_off, lengths, stream, dst)
    starts = np.r_[dst, idle_pos].astype(np.int64)
    all_len = np.r_[lengths, idle_len].astype(np.int64)
    all_apid = np.r_[apids, np.full(len(idle_pos), IDLE_APID)].astype(np.int64)
    all_seq = np.r_[seqs, np.zeros(len(idle_pos), np.int64)].astype(np.int64)
    o = np.argsort(starts, kind="stable")
    return stream, starts[o], all_apid[o], all_seq[o], all_len[o], per_apid


def _build_frames(rng, plan: _Plan, n_frames: int, idle_fraction: float, flush: float):
    """Every transmitted frame, in order, plus what the truth needs to know about each."""
    link = plan.link
    fl = plan.frame_length
    frame_seconds = (fl + link.rs_parity * link.interleave + len(link.asm) // 2) * 8 / plan.bit_rate
    t0 = CLOCK_START + float(rng.uniform(0, 86400.0))
    # which VC each frame slot carries
    data_vcs = [v for v in plan.vcs if v != plan.idle_vcid]
    weights = np.array([1.0 if plan.vcs[v][0] == "packets" else 0.2 for v in data_vcs])
    sched = np.asarray(data_vcs, np.int64)[rng.choice(len(data_vcs), n_frames, p=weights / weights.sum())]
    idle_frame = np.zeros(n_frames, bool)
    if plan.idle_vcid is not None and idle_fraction > 0:
        idle_frame = rng.random(n_frames) < idle_fraction
        sched[idle_frame] = plan.idle_vcid
    frame_times = t0 + np.arange(n_frames) * frame_seconds
    duration = max(n_frames * frame_seconds, frame_seconds)
    frames = np.full((n_frames, fl), IDLE_FILL, np.uint8)
    fhp = np.full(n_frames, 0x7FF, np.int64)
    # VC frame counters: start anywhere (so short captures see wraps too)
    vc_mod = tm.VC_MODULUS if plan.frame_type == "TM" else aos.VC_MODULUS
    vcfc = np.zeros(n_frames, np.int64)
    packet_info = {}
    for v in sorted(plan.vcs):
        rows = np.flatnonzero(sched == v)
        start = int(rng.integers(vc_mod)) if plan.frame_type == "TM" else int(vc_mod - rng.integers(1, 4 * len(rows) + 2))
        vcfc[rows] = (start + np.arange(len(rows))) % vc_mod
        data, _ = plan.vcs[v]
        zstart, zone = _zone_layout(plan, v)
        vc_idle = idle_frame[rows] if plan.frame_type == "TM" else np.ones(len(rows), bool) if v == plan.idle_vcid \
            else np.zeros(len(rows), bool)
        work = rows[~vc_idle]
        if data == "packets" and v != plan.idle_vcid:
            stream, starts, apids, seqs, lens, per_apid = _vc_stream(rng, plan, v, len(work), duration,
                                                                    t0, flush)
            zones, vfhp = pk.pack_mpdu(stream, starts, zone)
            frames[work, zstart:zstart + zone] = zones
            fhp[work] = vfhp
            packet_info[v] = dict(rows=work, stream=stream, starts=starts, apids=apids, seqs=seqs,
                                  lengths=lens, zone=zone, per_apid=per_apid)
        elif len(work):
            a0 = zstart - (2 if plan.frame_type == "AOS" and data == "packets" else 0)
            frames[work, a0:zstart + zone] = rng.integers(0, 256, (len(work), zstart + zone - a0), dtype=np.uint8)
        if plan.frame_type == "TM":
            fhp[rows[vc_idle]] = tm.FHP_IDLE
    # headers, secondary header / insert zone, OCF, FECF
    # per-VC properties as lookup tables indexed by VCID (no loop over frames)
    ocf_of = np.zeros(64, bool)
    packets_of = np.zeros(64, bool)
    for v, (d, o) in plan.vcs.items():
        ocf_of[v], packets_of[v] = o, d == "packets" and v != plan.idle_vcid
    ocf_flag = ocf_of[sched]
    if plan.frame_type == "TM":
        mc0 = int(rng.integers(256))
        vca = ~packets_of[sched] & ~idle_frame
        frames[:, :6] = tm.pack_primary_header(plan.scid, sched, (mc0 + np.arange(n_frames)) % 256, vcfc,
                                               np.where(vca, 0x7FF, fhp), ocf_flag=ocf_flag,
                                               sec_hdr_flag=link.tm_secondary_header > 0,
                                               sync_flag=vca, n=n_frames)
        if link.tm_secondary_header:
            k = link.tm_secondary_header - 1
            body = _be_bytes(np.arange(n_frames, dtype=np.uint64), 8)[:, max(0, 8 - k):]
            if k > 8:
                body = np.concatenate([np.zeros((n_frames, k - 8), np.uint8), body], axis=1)
            frames[:, 6:6 + k + 1] = tm.pack_secondary_header(body)
    else:
        frames[:, :6] = aos.pack_primary_header(plan.scid, sched, vcfc, n=n_frames)
        at = 6
        if link.fhec:
            frames[:, 6:8] = aos.fhec_encode(frames[:, :6])
            at = 8
        if link.insert_zone:
            frames[:, at:at + link.insert_zone] = rng.integers(0, 256, link.insert_zone, dtype=np.uint8)
            izt = link.insert_zone_time
            if izt is not None:
                counts = np.floor((frame_times - izt.epoch_unix) / izt.unit).astype(np.int64)
                b = _be_bytes((counts % (1 << (8 * izt.length))).astype(np.uint64), izt.length)
                if izt.byteorder == "little":
                    b = b[:, ::-1]
                frames[:, at + izt.offset: at + izt.offset + izt.length] = b
            at += link.insert_zone
        mp = packets_of[sched]
        if mp.any():
            frames[mp, at:at + 2] = aos.pack_mpdu_header(fhp[mp])
    tail = fl - (2 if link.fecf else 0)
    if ocf_flag.any():
        report = (np.arange(n_frames) // 37) % 256
        words = clcw.encode(vcid=0, report_value=report[ocf_flag])
        frames[ocf_flag, tail - 4:tail] = clcw.to_bytes(words)
    if link.fecf:
        c = crc.crc16(frames[:, :tail])
        frames[:, tail] = (c >> 8).astype(np.uint8)
        frames[:, tail + 1] = (c & 0xFF).astype(np.uint8)
    is_idle = (sched == plan.idle_vcid) if plan.idle_vcid is not None else np.zeros(n_frames, bool)
    if plan.frame_type == "TM":
        is_idle = idle_frame.copy()
    return frames, sched, vcfc, is_idle, packet_info, vc_mod


# ----------------------------------------------------------------------------- channel

def _asm_bits(link) -> tuple[int, int]:
    asm = str(link.asm)
    return int(asm, 16), len(asm) * 4


def _near_marker(bits_bytes: np.ndarray, asm: int, asm_bits: int, max_err: int) -> np.ndarray:
    pos, _, _ = sync.find_asm(np.ascontiguousarray(bits_bytes, np.uint8), asm=asm,
                              max_bit_errors=max_err, asm_bits=asm_bits)
    return pos


def _random_bits_free_of_marker(rng, nbits: int, after: np.ndarray, asm: int, asm_bits: int,
                                max_err: int, before: np.ndarray | None = None) -> np.ndarray:
    """``nbits`` random bits (packed, MSB first) in which, followed by the marker bits
    ``after`` (and preceded by ``before``), no marker-like window starts except the real one."""
    nbytes = (nbits + 7) // 8
    pre = np.zeros(0, np.uint8) if before is None else np.unpackbits(before)
    for _ in range(1000):
        b = rng.integers(0, 256, nbytes, dtype=np.uint8)
        bits = np.unpackbits(b)[:nbits]
        window = np.concatenate([pre, bits, np.unpackbits(after)])
        pos = _near_marker(np.packbits(window), asm, asm_bits, max_err)
        pos = pos[pos + asm_bits <= window.size]
        if np.all(pos >= pre.size + nbits):
            return b
    raise RuntimeError("could not draw marker-free random bits")  # pragma: no cover


class _SyncModel:
    """The receiver's marker synchroniser (``sync.FrameSync`` with the settings the channel
    decoder gives it) replayed at CADU granularity from the positions of the real markers."""

    def __init__(self, cfg: ChannelConfig):
        fs = ChannelDecoder(cfg).sync        # whatever settings the channel decoder uses
        self.flywheel = int(fs.flywheel)
        self.tol = int(fs.spacing_tolerance)
        self.verify = bool(fs.verify)
        self.strong = int(fs.strong_match)
        self.back = int(fs.resync_back)
        self.asm_bits = int(cfg.asm_bits)
        self.cadu = self.asm_bits + 8 * cfg.codeblock_length

    def run(self, pos: np.ndarray, errs: np.ndarray, inv: np.ndarray, nbits: int, max_err: int):
        """Codeblocks the receiver delivers, given the bit position of every real marker.

        Returns (delivered: list of (index of the real CADU, or -1 for a flywheel
        codeblock; inverted), truncated, lock_losses, bit positions of the flywheel
        codeblocks' markers). In lock it jumps from marker to
        marker, so the loop runs once per codeblock in plain Python: fine for the sizes
        whose truth is asked for (the loop is skipped when nothing disturbs the stream)."""
        out, fly = [], []
        truncated = lock_losses = 0
        n = len(pos)
        cadu, tol, asm_bits = self.cadu, self.tol, self.asm_bits
        pos = [int(x) for x in pos]

        def verified(j):
            if pos[j] + cadu + tol + asm_bits > nbits:
                return False
            return j + 1 < n and abs(pos[j + 1] - pos[j] - cadu) <= tol

        mode, p, misses, held, i = 0, 0, 0, False, 0
        while True:
            if mode == 1:
                while i < n and pos[i] < p - tol - self.back:
                    i += 1
                if i < n and abs(pos[i] - p) <= tol:
                    if pos[i] + cadu <= nbits:
                        out.append((i, bool(inv[i])))
                        held, misses, p = bool(inv[i]), 0, pos[i] + cadu
                        i += 1
                        continue
                    truncated += 1
                    break
                if p + cadu > nbits:
                    break
                j = i
                while j < n and pos[j] < p - self.back:
                    j += 1
                found = -1
                while j < n and pos[j] < p + cadu - tol:
                    if verified(j):
                        found = j
                        break
                    j += 1
                if found >= 0:
                    out.append((found, bool(inv[found])))
                    lock_losses += 1
                    held, misses, p = bool(inv[found]), 0, pos[found] + cadu
                    i = found + 1
                    continue
                misses += 1
                if misses > self.flywheel:
                    lock_losses += 1
                    mode, misses, p = 0, 0, max(p - tol, 0)
                    continue
                out.append((-1, held))
                fly.append(p)
                p += cadu
            else:
                while i < n and pos[i] < p:
                    i += 1
                if i >= n:
                    break
                q = pos[i]
                need = q + cadu + (tol + asm_bits if self.verify else 0)
                if need > nbits:
                    if q + cadu <= nbits:
                        if not self.verify or errs[i] <= self.strong:
                            out.append((i, bool(inv[i])))
                            held, mode, misses, p = bool(inv[i]), 1, 0, q + cadu
                            i += 1
                            continue
                    elif errs[i] <= (max_err if not self.verify else self.strong):
                        truncated += 1
                        break
                    p = q + 1
                    continue
                if self.verify and not (i + 1 < n and abs(pos[i + 1] - q - cadu) <= tol):
                    p = q + 1
                    continue
                out.append((i, bool(inv[i])))
                held, mode, misses, p = bool(inv[i]), 1, 0, q + cadu
                i += 1
        return out, truncated, lock_losses, fly


# ----------------------------------------------------------------------------- truth

def _empty_truth() -> dict:
    return {"frames": {"total": 0, "clean": 0, "corrected": 0, "uncorrectable": 0, "crc_failed": 0,
                       "rejected": 0, "idle": 0},
            "rs_symbols_corrected": 0,
            "sync": {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0},
            "virtual_channels": {}, "packets": {}, "idle_packets": 0, "rejects": {},
            "packet_md5": {}, "exact": True, "notes": []}


def _vc_truth(delivered_rows: np.ndarray, sched, vcfc, is_idle, vc_mod) -> dict:
    out = {}
    for v in np.unique(sched[delivered_rows]) if len(delivered_rows) else []:
        rows = delivered_rows[sched[delivered_rows] == v]
        c = vcfc[rows]
        d = (c[1:] - c[:-1]) % vc_mod
        gap = d != 1
        lost = np.where(gap & (d != 0) & (d < vc_mod // 2), d - 1, 0)
        out[str(int(v))] = {"frames": int(len(rows)), "idle": int(is_idle[rows].sum()),
                            "gaps": int(gap.sum()), "frames_lost": int(lost.sum())}
    return out


def _packet_truth(truth: dict, packet_info: dict, delivered: np.ndarray, list_limit: int) -> None:
    """Per-APID counts from which frames of each VC were delivered (all VCs' rows)."""
    per_apid_bytes: dict[int, list] = {}
    delivered_list = []
    stats: dict[int, dict] = {}
    idle_packets = 0
    for v in sorted(packet_info):
        info = packet_info[v]
        ok = delivered[info["rows"]]
        zone = info["zone"]
        starts, lens, apids, seqs = info["starts"], info["lengths"], info["apids"], info["seqs"]
        bad = np.concatenate([[0], np.cumsum(~ok)])
        f_s = starts // zone
        f_e = (starts + lens - 1) // zone
        f_h = (starts + 5) // zone
        whole = (bad[f_e + 1] - bad[f_s]) == 0
        header = (bad[f_h + 1] - bad[f_s]) == 0
        idle = apids == IDLE_APID
        idle_packets += int((whole & idle).sum())
        real = ~idle
        for apid in np.unique(apids[real]):
            sel = apids == apid
            got = sel & whole
            s = seqs[got]
            d = (s[1:] - s[:-1]) % SEQ_MODULUS
            gap = d != 1
            missing = np.where(gap & (d != 0) & (d < SEQ_MODULUS // 2), d - 1, 0)
            st = stats.setdefault(int(apid), {"count": 0, "bytes": 0, "sequence_gaps": 0,
                                              "sequence_missing": 0, "dropped_incomplete": 0})
            st["count"] += int(got.sum())
            st["bytes"] += int(lens[got].sum())
            st["sequence_gaps"] += int(gap.sum())
            st["sequence_missing"] += int(missing.sum())
            st["dropped_incomplete"] += int((sel & header & ~whole).sum())
            out = np.empty(int(lens[got].sum()), np.uint8)
            dst = np.zeros(int(got.sum()), np.int64)
            if got.any():
                np.cumsum(lens[got][:-1], out=dst[1:])
            _scatter(info["stream"], starts[got], lens[got], out, dst)
            per_apid_bytes.setdefault(int(apid), []).append(out)
        if list_limit and len(delivered_list) <= list_limit:
            order = np.flatnonzero(whole & real)[:list_limit + 1]
            delivered_list.extend(zip(apids[order].tolist(), seqs[order].tolist()))
    # an APID appears once anything was counted for it (as the decoder reports)
    truth["packets"] = {str(a): stats[a] for a in sorted(stats) if any(stats[a].values())}
    truth["idle_packets"] = idle_packets
    truth["packet_md5"] = {str(a): hashlib.md5(b"".join(x.tobytes() for x in per_apid_bytes[a])).hexdigest()
                           for a in sorted(per_apid_bytes) if stats[a]["count"]}
    if list_limit and len(delivered_list) <= list_limit:
        truth["delivered_packets"] = [[int(a), int(s)] for a, s in delivered_list]


def _choose_lost(rng, n_lost: int, candidates: np.ndarray, sched, packet_info) -> np.ndarray:
    """Frames to lose, avoiding any whose loss would split a packet's primary header."""
    unsafe = np.zeros(len(sched), bool)
    for v, info in packet_info.items():
        zone = info["zone"]
        s = info["starts"]
        split = (s % zone) > zone - 6          # header begins in frame j, ends in j+1
        j = s[split] // zone
        unsafe[info["rows"][j[j + 1 < len(info["rows"])] + 1]] = True
    ok = candidates[~unsafe[candidates]]
    if n_lost > len(ok):
        raise ValueError(f"cannot lose {n_lost} frames out of {len(candidates)} "
                         f"({len(ok)} can be lost without splitting a packet header)")
    return np.sort(rng.choice(ok, n_lost, replace=False))


FRAME_CHECKS = ("version", "scid", "frame_length", "fhec")


def _frame_checks(frames: np.ndarray, plan: _Plan) -> np.ndarray:
    """Per received frame: '' or the first transfer frame check it fails, in DESIGN.md's
    order (version, SCID, frame length/layout, FHEC). TM layout: the secondary header
    flag and length, and the OCF flag, must be what the mission says."""
    link = plan.link
    n = frames.shape[0]
    fhec_ok = np.ones(n, bool)
    length_ok = np.ones(n, bool)
    if plan.frame_type == "TM":
        h = tm.decode_primary_header(frames)
        version_ok = h["version"] == tm.TM_VERSION
        if link.tm_secondary_header:
            length_ok = h["sec_hdr_flag"] & (tm.decode_secondary_header(frames)["length"] == link.tm_secondary_header)
        else:
            length_ok = ~h["sec_hdr_flag"]
        length_ok = length_ok & (h["ocf_flag"] == bool(link.ocf))
    else:
        head = frames[:, :aos.HEADER_LENGTH + aos.FHEC_LENGTH].copy()
        if link.fhec:
            fhec_ok, _ = aos.fhec_decode(head, correct=True)
        h = aos.decode_primary_header(head)
        version_ok = h["version"] == aos.AOS_VERSION
    scid_ok = h["scid"] == plan.scid
    reason = np.full(n, "", dtype=object)
    pending = np.ones(n, bool)
    for ok, name in zip((version_ok, scid_ok, length_ok, fhec_ok), FRAME_CHECKS):
        reason[pending & ~ok] = name
        pending &= ok
    return reason


def _count_checked(truth: dict, frames: np.ndarray, plan: _Plan, what: str) -> np.ndarray:
    """Frames known to hold errors after the channel: count each under its first failing
    check (transfer frame checks, then FECF). Returns each frame's status ('crc',
    a check name, or 'delivered' when nothing catches the errors: the truth is then
    not exact)."""
    rejects = truth["rejects"]
    status = _frame_checks(frames, plan)
    for name in FRAME_CHECKS:
        k = int((status == name).sum())
        if k:
            rejects[name] = rejects.get(name, 0) + k
    rest = status == ""
    if rest.any() and plan.link.fecf:
        failed = rest & ~crc.fecf_ok(frames)
        if failed.any():
            rejects["crc"] = rejects.get("crc", 0) + int(failed.sum())
            status[failed] = "crc"
        rest &= ~failed
    if rest.any():
        status[rest] = "delivered"
        truth["exact"] = False
        truth["notes"].append(f"{int(rest.sum())} {what} pass every frame check: what they do to "
                              "virtual channels and packets is not predicted")
    return status


# ----------------------------------------------------------------------------- simulate

def simulate(mission, *, frames: int = 1000, seed: int = 0, impairments: Impairments | None = None,
             level: str | None = None, idle_fraction: float = 0.02, flush_fraction: float = 0.01,
             list_limit: int = 5000) -> SimulatedDownlink:
    """A simulated downlink of ``frames`` transfer frames for ``mission`` (a Mission or a path).

    ``level``: "bits" (CADU stream), "frames" (frames back to back) or "packets" (the Space
    Packet stream); default the mission's level. ``idle_fraction`` of the frames are idle
    frames; ``flush_fraction`` of the packets close their frame early with an idle packet.
    The same arguments give byte-identical output.
    """
    mission = _load(mission)
    imp = impairments if impairments is not None else Impairments()
    if not isinstance(imp, Impairments):
        raise ValueError("impairments must be an Impairments instance")
    level = level or getattr(mission, "level", None) or "bits"
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not 0 <= idle_fraction < 1 or not 0 <= flush_fraction < 1:
        raise ValueError("idle_fraction and flush_fraction must be in 0..1")
    if mission.link is None and level != "packets":
        raise ValueError(f"the mission has no [link]: only level \"packets\" can be simulated, not {level!r}")
    if level != "bits" and imp.channel_only():
        raise ValueError(f"impairments {', '.join(imp.channel_only())} exist only at level \"bits\", "
                         f"not {level!r}")
    if level == "packets" and imp.any:
        raise ValueError("level \"packets\" takes no impairments")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6753]))
    plan = _plan(mission, rng)
    n = int(frames)
    tx, sched, vcfc, is_idle, packet_info, vc_mod = _build_frames(rng, plan, n, idle_fraction, flush_fraction)
    truth = _empty_truth()
    truth["simulation"] = {"mission": plan.name, "frames": n, "seed": int(seed), "level": level,
                           "impairments": asdict(imp)}
    per_apid = {}
    for info in packet_info.values():
        per_apid.update(info["per_apid"])
    if level == "packets":
        capture = _packet_level(truth, packet_info, list_limit)
        return SimulatedDownlink(capture, truth, level, tx, per_apid)
    link = plan.link
    cfg = channel_config(link)
    rng_imp = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1A7E]))
    status = np.full(n, "lost", dtype=object)        # per transmitted frame, its fate
    kept = np.arange(n)
    if imp.lost_frames:
        lost = _choose_lost(rng_imp, int(imp.lost_frames), np.arange(n), sched, packet_info)
        kept = np.setdiff1d(kept, lost)
    if level == "frames":
        capture = _frames_level(truth, rng_imp, imp, plan, cfg, tx, kept, status)
    else:
        capture = _bits_level(truth, rng_imp, imp, plan, cfg, tx, kept, status)
    delivered = status == "delivered"
    rows = np.flatnonzero(delivered)
    f = truth["frames"]
    f["idle"] = int(is_idle[rows].sum())
    truth["virtual_channels"] = _vc_truth(rows, sched, vcfc, is_idle, vc_mod)
    if plan.frame_type == "TM":
        # the master channel counter runs over every frame of the physical channel
        mc = tm.decode_primary_header(tx[rows, :6])["mcfc"].astype(np.int64) if len(rows) else np.zeros(0, np.int64)
        d = (mc[1:] - mc[:-1]) % tm.MC_MODULUS
        gap = d != 1
        truth["master_channel"] = {"gaps": int(gap.sum()),
                                   "frames_lost": int(np.where(gap & (d < tm.MC_MODULUS // 2), d - 1, 0).sum())}
    _packet_truth(truth, packet_info, delivered, list_limit)
    truth["sync"]["bits_in"] = len(capture) * 8
    if not truth["notes"]:
        del truth["notes"]
    return SimulatedDownlink(capture, truth, level, tx, per_apid)


def _packet_level(truth: dict, packet_info: dict, list_limit: int) -> bytes:
    """The Space Packet stream (no idle packets), VCs merged in their packets' order."""
    parts = []
    for v in sorted(packet_info):
        info = packet_info[v]
        real = info["apids"] != IDLE_APID
        parts.append((info, real))
    truth["frames"] = {k: 0 for k in truth["frames"]}
    truth["virtual_channels"] = {}
    truth["sync"] = {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0}
    chunks = []
    for info, real in parts:
        starts, lens = info["starts"][real], info["lengths"][real]
        out = np.empty(int(lens.sum()), np.uint8)
        dst = np.zeros(len(lens), np.int64)
        if len(lens):
            np.cumsum(lens[:-1], out=dst[1:])
        _scatter(info["stream"], starts, lens, out, dst)
        chunks.append(out)
    # every packet is delivered: reuse the frame-level rule with all frames delivered
    total_rows = max([int(i["rows"].max()) + 1 for i in packet_info.values() if len(i["rows"])] or [0])
    _packet_truth(truth, packet_info, np.ones(total_rows, bool), list_limit)
    truth["idle_packets"] = 0
    truth["sync"]["bits_in"] = int(sum(c.size for c in chunks)) * 8
    if not truth["notes"]:
        del truth["notes"]
    return b"".join(c.tobytes() for c in chunks)


def _frames_level(truth, rng, imp: Impairments, plan: _Plan, cfg: ChannelConfig, tx, kept, status) -> bytes:
    link = plan.link
    rx = tx[kept].copy()
    f = truth["frames"]
    rejects = truth["rejects"]
    errs = np.zeros(len(kept), bool)
    if imp.bit_error_rate:
        errs = _apply_ber(rng, rx, imp.bit_error_rate)
    status[kept] = "delivered"
    check = errs.copy()
    if imp.truncate_last and len(kept):
        check[-1] = False                    # the cut record is refused as truncated, unread
    if check.any():
        status[kept[check]] = _count_checked(truth, rx[check], plan, "frames with bit errors")
    capture = rx.reshape(-1)
    f["total"] = len(kept)
    f["clean"] = len(kept)
    if imp.truncate_last and len(kept):
        cut = int(rng.integers(1, plan.frame_length))
        capture = capture[:capture.size - cut]
        status[kept[-1]] = "truncated"
        rejects["truncated"] = 1
    f["crc_failed"] = int(rejects.get("crc", 0))
    f["rejected"] = int(sum(v for k, v in rejects.items() if k != "crc"))
    return capture.tobytes()


def _apply_ber(rng, blocks: np.ndarray, ber: float) -> np.ndarray:
    """Flip random bits of every row in place; returns which rows changed."""
    nbits = blocks.size * 8
    k = int(rng.binomial(nbits, ber))
    if k == 0:
        return np.zeros(blocks.shape[0], bool)
    pos = np.unique(rng.integers(0, nbits, k))
    flat = blocks.reshape(-1)
    np.bitwise_xor.at(flat, pos >> 3, (0x80 >> (pos & 7)).astype(np.uint8))
    changed = np.zeros(blocks.shape[0], bool)
    changed[np.unique((pos >> 3) // blocks.shape[1])] = True
    return changed


def _bits_level(truth, rng, imp: Impairments, plan: _Plan, cfg: ChannelConfig, tx, kept, status) -> bytes:
    link = plan.link
    enc = ChannelEncoder(cfg)
    blocks_tx = enc.codeblocks(tx[kept])
    errors = bool(imp.byte_errors_per_codeword or imp.bit_error_rate)
    blocks = blocks_tx.copy() if errors or imp.bit_slips else blocks_tx   # slips re-read some
    m, cb = blocks.shape
    asm, asm_bits = _asm_bits(link)
    asm_bytes = asm_bits // 8
    max_err = int(link.asm_max_bit_errors)
    parity = cfg.parity
    ilv = cfg.interleave if parity else 1
    # --- errors inside codeblocks: exact per codeword
    if imp.byte_errors_per_codeword:
        k = int(imp.byte_errors_per_codeword)
        per_cw = cb // ilv
        if k > per_cw:
            raise ValueError(f"byte_errors_per_codeword {k} exceeds the {per_cw} bytes of a codeword")
        hit = np.flatnonzero(rng.random(m) < imp.byte_error_fraction) if imp.byte_error_fraction < 1 \
            else np.arange(m)
        if len(hit):
            # k distinct positions per codeword: the first k of a random permutation
            keys = rng.random((len(hit), ilv, per_cw))
            pos_in_cw = np.argsort(keys, axis=2)[:, :, :k]
            cols = pos_in_cw * ilv + np.arange(ilv)[None, :, None]
            vals = rng.integers(1, 256, cols.shape, dtype=np.uint8)
            blocks[hit[:, None, None], cols] ^= vals
    asm_err_bits = np.zeros((m, asm_bits), bool)
    if imp.bit_error_rate:
        _apply_ber(rng, blocks, imp.bit_error_rate)
        # markers see the same channel, but never more errors than the receiver tolerates
        e = rng.random((m, asm_bits)) < imp.bit_error_rate
        over = np.flatnonzero(e.sum(axis=1) > max_err)
        for r in over:  # rare: keep the first max_err errors of that marker
            idx = np.flatnonzero(e[r])
            e[r, idx[max_err:]] = False
        asm_err_bits = e
    # --- per codeword outcome
    if not (imp.byte_errors_per_codeword or imp.bit_error_rate):
        diff = np.zeros((m, ilv if parity else 1), np.int64)
    elif parity:
        diff = (blocks != blocks_tx).reshape(m, cb // ilv, ilv).sum(axis=1)
    else:
        diff = (blocks != blocks_tx).sum(axis=1, keepdims=True)
    # --- CADUs with polarity, then the bit stream with insertions
    cadus = np.empty((m, asm_bytes + cb), np.uint8)
    cadus[:, asm_bytes:] = blocks
    marker = np.frombuffer(asm.to_bytes(asm_bytes, "big"), np.uint8)
    cadus[:, :asm_bytes] = marker
    asm_errs = asm_err_bits.sum(axis=1).astype(np.int64)
    if asm_err_bits.any():
        cadus[:, :asm_bytes] ^= np.packbits(asm_err_bits, axis=1)
    inv = np.zeros(m, bool)
    if imp.polarity_flips and m > 1:
        flips = rng.choice(np.arange(1, m), min(int(imp.polarity_flips), m - 1), replace=False)
        toggles = np.zeros(m, np.int64)
        toggles[flips] = 1
        inv = (np.cumsum(toggles) % 2).astype(bool)
    if imp.inverted:
        inv = ~inv
    cadus[inv] ^= 0xFF
    row_bits = np.full(m, cadus.shape[1] * 8, np.int64)
    ins_bits = np.zeros(m, np.int64)
    ins_parts = [np.zeros(0, np.uint8)] * m
    # events go where the CADU after them can be verified (its successor exists), so the
    # receiver resynchronises at once instead of flywheeling near the end of the stream
    slots = np.arange(1, m - 1) if m > 2 + imp.bit_slips + imp.garbage_bytes else np.arange(1, m)
    n_events = int(imp.bit_slips) + int(imp.garbage_bytes)
    if n_events > len(slots):
        raise ValueError(f"{n_events} slips and garbage insertions need at least {n_events + 1} CADUs")
    event_slots = rng.choice(slots, n_events, replace=False) if n_events else np.zeros(0, np.int64)
    slip_slots, garbage_slots = event_slots[:imp.bit_slips], event_slots[imp.bit_slips:]
    deleted = {}
    for s in np.sort(slip_slots):
        k = int(rng.integers(1, imp.slip_bits + 1))
        if rng.random() < 0.5:
            row_bits[s - 1] -= k            # the previous CADU's last k bits never arrive
            deleted[int(s - 1)] = k
        else:
            ins_bits[s] = k
    for s in np.sort(garbage_slots):
        ins_bits[s] = 8 * int(rng.integers(1, imp.garbage_length + 1))
    if imp.bit_offset:
        ins_bits[0] = int(imp.bit_offset)
    # insertions must not resemble the marker (checked with the bits around them)
    for s in np.flatnonzero(ins_bits):
        before = cadus[s - 1, -8:] if s > 0 else None
        ins_parts[s] = _random_bits_free_of_marker(rng, int(ins_bits[s]), cadus[s, :asm_bytes + 8],
                                                   asm, asm_bits, max_err, before)
    cut = 0
    if imp.truncate_last and m:
        cut = 8 * int(rng.integers(1, cb - 1))         # whole bytes; the marker and a byte survive
        row_bits[-1] -= cut
    total_bits = int(row_bits.sum() + ins_bits.sum())
    if not ins_bits.any() and not deleted and not cut:
        capture = cadus.reshape(-1)            # CADUs back to back: no bit-level assembly
        starts = np.arange(m, dtype=np.int64) * cadus.shape[1] * 8
    else:
        ins_off = np.zeros(m, np.int64)
        lens = np.array([p.size for p in ins_parts], np.int64)
        if m:
            np.cumsum(lens[:-1], out=ins_off[1:])
        ins = np.concatenate(ins_parts + [np.zeros(8, np.uint8)])
        out = np.zeros((total_bits + 7) // 8 + 8, np.uint8)
        starts = _concat_bits(cadus, row_bits, ins, ins_off, ins_bits, out)
        capture = out[:(total_bits + 7) // 8]
    # --- deletions change the tail of the CADU before them: read it back as a receiver would
    for r, k in deleted.items():
        p = int(starts[r]) + asm_bits
        seen = _read_bits(capture, p, cb * 8)
        if inv[r]:
            seen ^= 0xFF
        blocks[r] = seen
        d = (seen != blocks_tx[r])
        diff[r] = d.reshape(cb // ilv, ilv).sum(axis=0) if parity else d.sum()
    # --- what the receiver does
    nbits = capture.size * 8
    undisturbed = m > 2 and not deleted and not ins_bits[1:].any()
    if undisturbed:
        # search finds the first marker (nothing marker-like before it), its successor
        # verifies it, and lock then holds to the end: every CADU, the last maybe cut short
        last_ok = int(starts[-1]) + cadus.shape[1] * 8 <= nbits
        got_idx = np.arange(m - (0 if last_ok else 1), dtype=np.int64)
        got_inv = inv[got_idx]
        truncated, lock_losses, fly = (0 if last_ok else 1), 0, []
    else:
        got, truncated, lock_losses, fly = _SyncModel(cfg).run(starts, asm_errs, inv, nbits, max_err)
        got_idx = np.array([i for i, _ in got], np.int64)
        got_inv = np.array([h for _, h in got], bool)
    f = truth["frames"]
    rejects = truth["rejects"]
    t = parity // 2
    truth["sync"]["inverted_codeblocks"] = int(got_inv.sum())
    flywheel = int((got_idx < 0).sum())
    real = got_idx[got_idx >= 0]
    f["total"] = len(got_idx) + truncated
    truth["sync"]["lock_losses"] = lock_losses
    if flywheel:
        held = got_inv[got_idx < 0]
        fly_blocks = np.stack([_read_bits(capture, int(p) + asm_bits, cb * 8) ^ (0xFF if h else 0)
                               for p, h in zip(fly, held)])
        _flywheel_truth(truth, cfg, plan, fly_blocks)
    status[kept[real]] = "delivered"
    if len(real):
        d = diff[real]
        if parity:
            bad = (d > t).any(axis=1)
            corr = np.where(bad, 0, d.sum(axis=1))
            f["uncorrectable"] += int(bad.sum())
            f["corrected"] += int(((corr > 0) & ~bad).sum())
            f["clean"] += int(((corr == 0) & ~bad).sum())
            truth["rs_symbols_corrected"] += int(corr[~bad].sum())
            status[kept[real[bad]]] = "rs_uncorrectable"
            errs = np.zeros(len(real), bool)
        else:
            f["clean"] += len(real)
            errs = d.sum(axis=1) > 0
        if errs.any():
            rx_frames = blocks[real]
            if cfg.randomized:
                from groundseg.coding import randomizer
                rx_frames = randomizer.randomize(rx_frames)
            status[kept[real[errs]]] = _count_checked(truth, np.ascontiguousarray(rx_frames[errs]), plan,
                                                      "frames with bit errors")
    if truncated:
        f["clean"] += truncated
        f["rejected"] += truncated
        rejects["truncated"] = truncated
    uncorr = f["uncorrectable"]
    if uncorr:
        rejects["rs_uncorrectable"] = uncorr
    f["crc_failed"] = int(rejects.get("crc", 0))
    f["rejected"] += int(sum(rejects.get(k, 0) for k in FRAME_CHECKS))
    return capture.tobytes()


def _flywheel_truth(truth: dict, cfg: ChannelConfig, plan: _Plan, blocks: np.ndarray) -> None:
    """Count codeblocks delivered blind at a predicted marker position (rows of ``blocks``,
    polarity already undone). Usually RS-uncorrectable; but a codeblock shifted by whole
    symbols of every codeword is a few symbols away from a cyclic shift of a codeword (and
    the randomiser sequence is itself a codeword for I = 1, 2, 4, 8), so RS may "correct"
    it. Bounded-distance decoding has one answer when one exists, so the project's RS
    decoder decides these few codeblocks; the frame checks then refuse what comes out."""
    from groundseg.coding import randomizer, reed_solomon
    f, rejects = truth["frames"], truth["rejects"]
    b = np.ascontiguousarray(blocks, np.uint8)
    if cfg.randomized and cfg.derandomize == "before_rs":
        b = randomizer.randomize(b)
    n = b.shape[0]
    if cfg.parity:
        frames, corr = reed_solomon.decode(b, interleave=cfg.interleave, parity=cfg.parity,
                                           dual_basis=cfg.dual_basis)
        bad = (np.asarray(corr) < 0).any(axis=1)
        sym = np.where(bad, 0, np.clip(corr, 0, None).sum(axis=1))
    else:
        frames, bad, sym = b, np.zeros(n, bool), np.zeros(n, np.int64)
    if cfg.randomized and cfg.derandomize == "after_rs":
        frames = randomizer.randomize(np.ascontiguousarray(frames))
    f["uncorrectable"] += int(bad.sum())
    f["corrected"] += int(((sym > 0) & ~bad).sum())
    f["clean"] += int(((sym == 0) & ~bad).sum())
    truth["rs_symbols_corrected"] += int(sym.sum())
    ok = ~bad
    if not ok.any():
        return
    _count_checked(truth, np.ascontiguousarray(frames[ok]), plan,
                   "flywheel codeblocks that RS passed")


def _read_bits(buf: np.ndarray, bit_pos: int, nbits: int) -> np.ndarray:
    """``nbits`` bits from ``bit_pos`` of packed ``buf``, repacked from bit 0 (zeros past the end)."""
    first = bit_pos // 8
    raw = buf[first: first + nbits // 8 + 2]
    bits = np.unpackbits(raw)[bit_pos % 8: bit_pos % 8 + nbits]
    if bits.size < nbits:
        bits = np.concatenate([bits, np.zeros(nbits - bits.size, np.uint8)])
    return np.packbits(bits)


# ----------------------------------------------------------------------------- files

def write_capture(path: str | Path, mission, *, frames: int = 1000, seed: int = 0,
                  impairments: Impairments | None = None, level: str | None = None,
                  **options) -> SimulatedDownlink:
    """Simulate and write ``path`` (the capture) and ``path``.truth.json."""
    sim = simulate(mission, frames=frames, seed=seed, impairments=impairments, level=level, **options)
    sim.write(path)
    return sim


_IMPAIRMENT_NAMES = {f for f in Impairments.__dataclass_fields__}


def simulate_to_file(mission, out_path: str | Path, frames: int = 1000, seed: int = 0, *,
                     impairments: Impairments | None = None, level: str | None = None,
                     **kwargs) -> dict:
    """The CLI's entry: ``mission`` is a Mission or a path; impairments as an
    :class:`Impairments` or as keyword arguments (``lost_frames=3``). Returns the truth."""
    imp_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _IMPAIRMENT_NAMES}
    if imp_kwargs:
        base = asdict(impairments) if impairments is not None else {}
        base.update(imp_kwargs)
        impairments = Impairments(**base)
    return write_capture(out_path, mission, frames=frames, seed=seed, impairments=impairments,
                         level=level, **kwargs).truth
