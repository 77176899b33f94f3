"""Archive layout: format version, table columns, pass statuses, compression, names.

Pure data and small pure functions (no h5py): what the file holds, not how it is
written. The layout is drawn in ``docs/archive.md``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from groundseg.link.records import PACKET_DTYPE

#: 1: calibrated fields stored as engineering values (float64); 2: as raw counts, calibrated
#: on read (archive/calibration.py). A writer keeps the schema of the archive it opens.
SCHEMA_VERSION = 2
#: Debian's h5dump 1.10 reads v110 files; 'latest' would not be.
LIBVER = ("v110", "v110")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: /passes status values.
PASS_OPEN, PASS_COMPLETE, PASS_INTERRUPTED, PASS_INCOMPLETE = 0, 1, 2, 3
PASS_STATUS = ("open", "complete", "interrupted", "incomplete")

#: time_source column of packet tables: which time the dedup key and onboard_time use.
TIME_ONBOARD, TIME_FRAME, TIME_RECEPTION, TIME_NONE = 0, 1, 2, 3

UNDECLARED = "_undeclared"
PACKETS_GROUP = "packets"

# /flushes row: these leading columns, then one row count per table (order in its attribute)
FLUSH_HEAD = ("flush_id", "pass_id", "layout_gen", "time_ms")

#: /passes columns (one dataset each). Report counts are -1 until the pass ends with a report.
PASS_COLUMNS = [
    ("pass_id", "<u4"), ("status", "u1"), ("started_at", "<f8"), ("ended_at", "<f8"),
    ("reception_start", "<f8"), ("reception_end", "<f8"),
    ("onboard_start", "<f8"), ("onboard_end", "<f8"),
    ("packets_archived", "<i8"), ("duplicates_skipped", "<i8"), ("untimed_packets", "<i8"),
    ("frames_archived", "<i8"), ("rejects_archived", "<i8"),
    ("source_offset", "<i8"), ("source_length", "<i8"),
    ("mission_offset", "<i8"), ("mission_length", "<i8"),
    ("report_offset", "<i8"), ("report_length", "<i8"),
    ("empty", "u1"),   # 1: the report shows no frame delivered and no packet (issue 8)
]
#: Scalar counts of the report JSON (DESIGN.md), flattened into /passes columns.
REPORT_COLUMNS = [
    ("frames_total", ("frames", "total")), ("frames_clean", ("frames", "clean")),
    ("frames_corrected", ("frames", "corrected")), ("frames_uncorrectable", ("frames", "uncorrectable")),
    ("frames_crc_failed", ("frames", "crc_failed")), ("frames_rejected", ("frames", "rejected")),
    ("frames_idle", ("frames", "idle")), ("rs_symbols_corrected", ("rs_symbols_corrected",)),
    ("sync_bits_in", ("sync", "bits_in")), ("sync_lock_losses", ("sync", "lock_losses")),
    ("sync_inverted_codeblocks", ("sync", "inverted_codeblocks")),
    ("idle_packets", ("idle_packets",)),
]
#: Sums over the report's per-VC / per-APID / per-reason dictionaries.
REPORT_SUMS = [
    ("packets_count", "packets", "count"), ("packets_bytes", "packets", "bytes"),
    ("packets_sequence_gaps", "packets", "sequence_gaps"),
    ("packets_sequence_missing", "packets", "sequence_missing"),
    ("packets_dropped_incomplete", "packets", "dropped_incomplete"),
    ("vc_gaps", "virtual_channels", "gaps"), ("vc_frames_lost", "virtual_channels", "frames_lost"),
    ("rejects_total", "rejects", None),
]
ALL_PASS_COLUMNS = PASS_COLUMNS + [(n, "<i8") for n, _ in REPORT_COLUMNS] + \
    [(n, "<i8") for n, _, _ in REPORT_SUMS]

TIME_COLUMNS = ("started_at", "ended_at", "reception_start", "reception_end", "onboard_start",
                 "onboard_end")

#: Columns every packet table has besides the PACKET_DTYPE header fields.
PACKET_EXTRA_COLUMNS = [("pass_id", "<u4"), ("onboard_time", "<f8"), ("time_source", "u1"),
                        ("dedup_key", "<u8"), ("raw_offset", "<i8")]

#: Compression per dataset category, chosen by measurement (benchmarks/bench_archive.py;
#: docs/archive.md has the figures). Header columns are mostly constant or regular
#: (pass, APID, lengths, counters, reception times): byte shuffle + gzip level 1 shrinks
#: them 4 to 200x at 150-700 MB/s. Decoded fields and raw packet bytes are often noisy,
#: where zlib runs at 15-50 MB/s for a ratio near 1: stored as they are by default
#: (``compression={"fields": {"compression": "gzip", "compression_opts": 1, "shuffle": True}}``
#: turns it on). Dedup keys are random and never compressed.
DEFAULT_COMPRESSION = {
    "header": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "fields": {},
    "raw": {},
    "text": {"compression": "gzip", "compression_opts": 1},
}
CHUNK_ROWS = 32768
#: Free space a flush needs beyond its data: chunk rounding, metadata, the commit row.
SPACE_MARGIN = 16 << 20
CHUNK_BYTES = 1 << 18              # uncompressed chunks: 256 KiB (raw heaps, fields, keys)
CHUNK_BYTES_COMPRESSED = 1 << 20   # compressed chunks hold up to 32768 rows


def packet_specs() -> dict:
    """Columns of a packet table: name -> (dtype, row shape)."""
    specs = {n: (PACKET_DTYPE[n], ()) for n in PACKET_DTYPE.names}
    specs.update({n: (np.dtype(t), ()) for n, t in PACKET_EXTRA_COLUMNS})
    return specs


def frame_specs(dtype: np.dtype) -> dict:
    """Columns of /frames for frame records of ``dtype``."""
    specs = {"pass_id": (np.dtype("<u4"), ())}
    specs.update({n: (dtype[n].base, dtype[n].shape) for n in dtype.names})
    return specs


def reject_specs(dtype: np.dtype) -> dict:
    """Columns of /rejects for reject records of ``dtype`` (their bytes go to the heap)."""
    specs = {"pass_id": (np.dtype("<u4"), ())}
    for n in dtype.names:
        if n != "offset":
            specs[n] = (dtype[n].base, dtype[n].shape)
    specs["length"] = (np.dtype("<i8"), ())
    specs["raw_offset"] = (np.dtype("<i8"), ())
    return specs


def compression_settings(compression) -> dict:
    """``compression`` ("default", "gzip", None/"none" or a dict per category) ->
    h5py dataset options per category."""
    if compression == "default":
        return {k: dict(v) for k, v in DEFAULT_COMPRESSION.items()}
    if compression is None or compression == "none":
        return {k: {} for k in DEFAULT_COMPRESSION}
    if compression == "gzip":
        return {k: {"compression": "gzip", "compression_opts": 1,
                    "shuffle": k != "raw" and k != "text"} for k in DEFAULT_COMPRESSION}
    if isinstance(compression, dict):
        out = {k: dict(v) for k, v in DEFAULT_COMPRESSION.items()}
        out.update({k: dict(v or {}) for k, v in compression.items()})
        return out
    raise ValueError(f"compression must be 'default', 'gzip', None or a dict, not {compression!r}")


def archive_path(archive: str | os.PathLike, mission_name: str) -> Path:
    """``archive`` is a directory (-> ``<dir>/<mission_name>.h5``) or a ``.h5`` file path."""
    p = Path(archive)
    if p.suffix.lower() in (".h5", ".hdf5") or p.is_file():
        return p
    return p / f"{mission_name}.h5"


# -- superblock: clearing stale consistency flags ------------------------------------------


def mission_apids(mission) -> dict[int, str]:
    """The mission's declared APIDs: number -> name."""
    out = {}
    for k, v in (getattr(mission, "apids", None) or {}).items():
        out[int(getattr(v, "id", k))] = str(getattr(v, "name", f"apid_{k}"))
    return out


def hdf5_name(name: str) -> str:
    """A name usable as an HDF5 link name."""
    name = name.replace("/", "_").strip() or "unnamed"
    return "_" + name if name in (".", "..") else name


def report_dict(report) -> dict | None:
    """The pass report as a dict: a dict, or an object with ``to_dict()`` (the Report type)."""
    if report is None or isinstance(report, dict):
        return report
    to_dict = getattr(report, "to_dict", None)
    if to_dict is None:
        raise TypeError(f"a pass report is a dict or has to_dict(), not {type(report).__name__}")
    return to_dict()


def report_value(report: dict, path: tuple) -> int:
    """The report's count at ``path`` (keys), -1 when absent."""
    v: Any = report
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return -1
        v = v[k]
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def report_sum(report: dict, key: str, sub: str | None) -> int:
    """Sum of ``report[key][*][sub]`` (or of ``report[key][*]``), -1 when absent."""
    d = report.get(key)
    if not isinstance(d, dict):
        return -1
    total = 0
    for v in d.values():
        if sub is None:
            total += int(v) if isinstance(v, (int, float, np.integer)) else 0
        elif isinstance(v, dict):
            total += int(v.get(sub, 0) or 0)
    return total


def report_is_empty(report: dict) -> bool:
    """The pass decoded nothing: no frame delivered and no packet (issue 8: marked in the
    pass row so an operator sees it). Frames delivered = clean + corrected - rejected -
    crc_failed; a packet-level pass has no frames, so its packets decide."""
    delivered = sum(max(0, report_value(report, ("frames", k))) for k in ("clean", "corrected")) \
        - sum(max(0, report_value(report, ("frames", k))) for k in ("rejected", "crc_failed"))
    packets = report_sum(report, "packets", "count")
    return delivered <= 0 and packets <= 0
