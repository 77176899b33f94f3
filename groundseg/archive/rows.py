"""Batches from the link layer as table rows: columns and heap bytes (numpy only).

What the writer appends: frame records, rejects (records plus their bytes), VCA data
fields and packets, each turned into ``{column: array}`` plus the bytes of its heap, the
rows' ``raw_offset`` local to that heap piece. Nothing here knows the file.
"""
from __future__ import annotations

import numpy as np

from groundseg.archive.schema import TIME_FRAME, TIME_NONE, TIME_ONBOARD, TIME_RECEPTION
from groundseg.link.records import REJECT_DTYPE, REJECT_REASONS, PacketBatch

__all__ = ["reject_rows", "packet_reject_records", "vca_rows", "packet_times", "packet_rows"]


def _local_offsets(length: np.ndarray) -> np.ndarray:
    local = np.zeros(len(length), np.int64)
    np.cumsum(length[:-1], out=local[1:])
    return local


def reject_rows(rejects, data, offsets) -> tuple[np.ndarray, dict, int, np.ndarray]:
    """(records, columns, rows, heap) of a RejectBatch, or of structured ``rejects`` with
    ``data`` and either ``offset``/``length`` fields or ``offsets`` (n + 1)."""
    records = getattr(rejects, "records", rejects)
    if data is None:
        data = getattr(rejects, "data", None)
    records = np.asarray(records)
    if records.dtype.names is None:
        raise ValueError("rejects must be structured records (see REJECT_DTYPE)")
    n = len(records)
    data = np.zeros(0, np.uint8) if data is None else np.ascontiguousarray(data, np.uint8).ravel()
    if offsets is not None:
        offsets = np.asarray(offsets, np.int64)
        if len(offsets) != n + 1:
            raise ValueError(f"reject_offsets must have {n + 1} entries, not {len(offsets)}")
        start, length = offsets[:-1], offsets[1:] - offsets[:-1]
    elif "offset" in records.dtype.names and "length" in records.dtype.names:
        start = records["offset"].astype(np.int64)
        length = records["length"].astype(np.int64)
    else:
        start = np.zeros(n, np.int64)
        length = np.zeros(n, np.int64)
    if np.any(length < 0) or np.any(start < 0) or np.any(start + length > len(data)):
        raise ValueError("reject offsets point outside reject_data")
    local = _local_offsets(length)
    pos = np.repeat(start - local, length) + np.arange(int(length.sum()), dtype=np.int64)
    cols = {nm: np.ascontiguousarray(records[nm]) for nm in records.dtype.names if nm != "offset"}
    cols["length"] = length
    cols["raw_offset"] = local
    return records, cols, n, data[pos]


def packet_reject_records(batch: PacketBatch, reason: str) -> tuple[np.ndarray, np.ndarray]:
    """Packets refused after extraction (telemetry could not decode them) as reject
    records and their bytes."""
    n = len(batch)
    rec = np.zeros(n, REJECT_DTYPE)
    rec["reason"] = REJECT_REASONS.index(reason)
    rec["vcid"] = batch.header["vcid"]
    rec["apid"] = batch.header["apid"].astype(np.int64)
    rec["reception_time"] = batch.header["reception_time"]
    rec["offset"] = batch.offsets[:-1] - batch.offsets[0]
    rec["length"] = batch.offsets[1:] - batch.offsets[:-1]
    return rec, batch.data[batch.offsets[0]:batch.offsets[-1]]


def vca_rows(records: np.ndarray, data: np.ndarray) -> tuple[dict, dict, int, np.ndarray]:
    """(column specs, columns, rows, heap) of VCA frames: each data field's used bytes."""
    n = len(records)
    length = records["length"].astype(np.int64)
    width = data.shape[1] if data.ndim == 2 else 0
    mask = np.arange(width)[None, :] < length[:, None]
    heap = data[mask] if width else np.zeros(0, np.uint8)
    specs = {"pass_id": (np.dtype("<u4"), ()), "raw_offset": (np.dtype("<i8"), ())}
    specs.update({nm: (records.dtype[nm].base, records.dtype[nm].shape) for nm in records.dtype.names})
    cols = {nm: np.ascontiguousarray(records[nm]) for nm in records.dtype.names}
    cols["raw_offset"] = _local_offsets(length)
    return specs, cols, n, np.ascontiguousarray(heap, np.uint8)


def packet_times(header: np.ndarray, onboard: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time_source, key time, reception time) per packet: the key time is the onboard
    time, else the frame's insert-zone time (NaN when neither)."""
    n = len(header)
    names = header.dtype.names
    frame_time = header["frame_time"].astype(np.float64) if "frame_time" in names else np.full(n, np.nan)
    rt = header["reception_time"].astype(np.float64) if "reception_time" in names else np.full(n, np.nan)
    src = np.full(n, TIME_NONE, np.uint8)
    src[np.isfinite(rt)] = TIME_RECEPTION
    src[np.isfinite(frame_time)] = TIME_FRAME
    src[np.isfinite(onboard)] = TIME_ONBOARD
    return src, np.where(np.isfinite(onboard), onboard, frame_time), rt


def packet_rows(batch: PacketBatch, onboard: np.ndarray, ktime: np.ndarray, src: np.ndarray,
                keys: np.ndarray) -> tuple[dict, np.ndarray]:
    """(columns, heap) of packets to archive (``pass_id`` and fields are the caller's)."""
    h = batch.header
    cols = {nm: np.ascontiguousarray(h[nm]) for nm in h.dtype.names}
    cols["onboard_time"] = np.where(np.isfinite(onboard), onboard, ktime).astype(np.float64)
    cols["time_source"] = src
    cols["dedup_key"] = keys
    cols["raw_offset"] = batch.offsets[:-1] - batch.offsets[0]
    cols["length"] = (batch.offsets[1:] - batch.offsets[:-1]).astype(np.int32)
    data = batch.data[batch.offsets[0]:batch.offsets[-1]]
    return cols, np.ascontiguousarray(data, np.uint8)
