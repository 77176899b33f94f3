"""Export, inspection and repair of a per-mission archive (CCSDS 133.0-B Space Packet streams).

``export_packets`` writes an APID's packets as a concatenated Space Packet stream in
reception order (passes in archive order, packets in order within a pass), which
ccsdspy reads back, or its decoded fields as CSV or Parquet. ``describe_archive``
is what ``groundseg inspect ARCHIVE`` shows; ``repair`` is ``groundseg archive repair``.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from groundseg.archive.errors import ArchiveDamagedError, ArchiveError
from groundseg.archive.lock import WriterLock, writer_alive
from groundseg.archive.paths import check_output, resolve_archive
from groundseg.archive.reader import iso, open_archive
from groundseg.archive.salvage import check_intact, salvage, survey
from groundseg.archive.schema import PASS_STATUS
from groundseg.archive.superblock import check_file, read_superblock
from groundseg.archive.writer import ArchiveWriter
from groundseg.errors import UsageError
from groundseg.link.records import REJECT_REASONS

__all__ = ["export_packets", "describe_archive", "repair", "FORMATS"]

FORMATS = ("ccsds", "csv", "parquet")


def _atomic_target(out: Path) -> Path:
    return check_output(out).with_name(out.name + ".part")


def export_packets(archive_path: str | os.PathLike, apid: int | str, out_path: str | os.PathLike,
                   fmt: str = "ccsds", *, passes=None, start=None, stop=None,
                   time: str = "onboard", raw_hex: bool = False) -> dict:
    """Write one APID (number or mission-file name) of the archive to ``out_path``.

    ``fmt``: "ccsds" (raw packets back to back, reception order), "csv" or "parquet"
    (one row per packet: header columns, times, decoded fields in the definition's order;
    parquet needs pyarrow); ``raw_hex``: CSV also carries each whole packet as hex.
    Returns ``{"apid", "name", "packets", "bytes", "path", "format"}``.
    ``archive_path`` may be the archive directory (``resolve_archive``).
    Raises ValueError (unknown format), UnknownNameError (an APID the archive does not
    hold; a UsageError and a KeyError), UsageError (the output's directory does not
    exist), ArchiveError (unreadable archive, missing pyarrow, write failure).
    """
    fmt = (fmt or "ccsds").lower()
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ArchiveError("parquet export needs pyarrow (pip install pyarrow); "
                               "use --format csv or ccsds") from None
    out = check_output(out_path)
    with open_archive(archive_path) as arc:
        number = arc.resolve_apid(apid, must_exist=True)
        arc.check_passes(passes)
        name = arc.apids.get(number)
        tmp = _atomic_target(out)
        try:
            if fmt == "ccsds":
                n = nbytes = 0
                with open(tmp, "wb") as fh:
                    for batch in arc.iter_raw_packets(number, start, stop, time, passes):
                        fh.write(batch.data.tobytes())
                        n += len(batch)
                        nbytes += len(batch.data)
            else:
                df = None
                rows = arc.packets(number, start, stop, time, passes)
                n = len(rows)
                if fmt == "parquet":
                    df = arc.dataframe(number, start, stop, time, passes)
                    df.to_parquet(tmp, index=False)
                else:
                    units = {k: v["units"] for k, v in arc.fields(number).items()}
                    raw = arc.raw_packets(number, start, stop, time, passes) if raw_hex else None
                    if raw is not None and len(raw) != len(rows):
                        raise ArchiveError(f"{out}: {len(raw)} raw packets for {len(rows)} rows")
                    _write_csv(rows, tmp, units, raw)
                nbytes = tmp.stat().st_size
            os.replace(tmp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ArchiveError(f"{out}: cannot write the export: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return {"apid": number, "name": name, "packets": int(n), "bytes": int(nbytes),
            "path": str(out), "format": fmt}


def _write_csv(rows: np.ndarray, path: Path, units: dict | None = None, raw=None,
               chunk: int = 65536) -> None:
    """One row per packet: header columns, times, then the decoded fields in the
    definition's order, ``name [units]`` in the header where a field has units; floats in
    their shortest round-trip form for their own precision (a float32 0.1 is written 0.1);
    the times also as UTC text; ``raw`` (a PacketBatch in the same order): the whole packet
    as hex in a last column."""
    units = units or {}
    cols = []
    for name in rows.dtype.names:
        shape = rows.dtype[name].shape
        if shape:
            cols += [(name, i) for i in range(int(np.prod(shape)))]
        else:
            cols.append((name, None))
    header = [(n if i is None else f"{n}[{i}]") + (f" [{units[n]}]" if units.get(n) else "")
              for n, i in cols]
    times = [c for c in ("onboard_time", "reception_time") if c in rows.dtype.names]
    header += [t.replace("_time", "_utc") for t in times]
    if raw is not None:
        header.append("packet_hex")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for s in range(0, len(rows), chunk):
            part = rows[s:s + chunk]
            columns = []
            for name, i in cols:
                v = part[name]
                if i is not None:
                    v = v.reshape(len(part), -1)[:, i]
                if v.dtype.kind == "S":
                    v = np.char.decode(v, "latin-1")
                elif v.dtype.kind == "f":
                    v = v.astype(str)         # numpy's shortest repr for the value's own dtype
                columns.append(v.tolist())
            for t in times:
                columns.append([iso(x) or "" for x in part[t].tolist()])
            if raw is not None:
                o = raw.offsets
                columns.append([raw.data[o[k]:o[k + 1]].tobytes().hex() for k in range(s, s + len(part))])
            w.writerows(zip(*columns))


def describe_archive(path: str | os.PathLike) -> dict:
    """What an archive (file or directory) holds: mission, passes (``empty`` when the pass
    decoded nothing), APIDs with packet counts and their fields' units, time span.
    Raises ArchiveDamagedError when committed data are not intact."""
    p = resolve_archive(path)
    with open_archive(p) as arc:
        if not writer_alive(p):
            check_intact(p)
        passes = arc.passes
        info: dict = {
            "archive": str(p),
            "mission": arc.mission_name,
            "spacecraft_id": arc.spacecraft_id,
            "schema_version": arc.schema_version,
            "groundseg_version": arc.groundseg_version,
            "file_bytes": p.stat().st_size,
        }
        try:
            flags = read_superblock(p)["flags"]
        except (OSError, ArchiveError):
            flags = 0
        if flags:
            info["writer_flags"] = ("a writer has it open, or one died "
                                    "(groundseg archive repair clears it)")
        plist = []
        for r in passes:
            d = arc.pass_info(int(r["pass_id"]))
            plist.append({
                "pass": d["pass_id"],
                "status": d["status_name"],
                "source": d["source"],
                "archived_at": iso(d["started_at"]),
                "reception": [iso(d["reception_start"]), iso(d["reception_end"])],
                "onboard": [iso(d["onboard_start"]), iso(d["onboard_end"])],
                "packets": d["packets_archived"],
                "duplicates_skipped": d["duplicates_skipped"],
                "frames": d["frames_archived"],
                "rejects": d["rejects_archived"],
                "empty": bool(d.get("empty", 0)),
            })
        info["passes"] = plist
        apids = []
        total = 0
        for apid, name in arc.apids.items():
            n = arc.packet_count(apid)
            total += n
            lo, hi = arc.apid_time_span(apid) if n else (np.nan, np.nan)
            apids.append({"apid": apid, "name": name or "(undeclared)", "packets": n,
                          "first_onboard": iso(lo), "last_onboard": iso(hi),
                          "fields": {k: v["units"] for k, v in arc.fields(apid).items()}})
        info["apids"] = apids
        info["packets"] = total
        info["frames"] = int(passes["frames_archived"].sum()) if len(passes) else 0
        rej = arc.rejects()
        if len(rej) and "reason" in rej.dtype.names:
            codes, counts = np.unique(rej["reason"], return_counts=True)
            info["rejects"] = {(REJECT_REASONS[c] if c < len(REJECT_REASONS) else str(c)): int(k)
                               for c, k in zip(codes.tolist(), counts.tolist())}
        else:
            info["rejects"] = {}
        on = arc.time_span("onboard")
        rx = arc.time_span("reception")
        info["time_span"] = {"onboard": [iso(on[0]), iso(on[1])],
                             "reception": [iso(rx[0]), iso(rx[1])]}
    return info


def repair(path: str | os.PathLike) -> dict:
    """Recover an archive (file or directory) whose writer died or whose file is damaged.

    A crashed writer: clear the stale consistency flags, drop any half-written flush, mark
    the interrupted pass. A damaged file (truncated, corrupt metadata): copy the last
    commit whose rows are all intact into a new file in its place, the damaged one kept
    as ``<file>.damaged`` (``salvage``), then recover as above. Safe on a healthy archive.
    Raises ArchiveLockedError if a writer is running, ArchiveDamagedError when nothing is
    intact, ArchiveError if not an archive."""
    p = resolve_archive(path)
    if not p.is_file():
        raise ArchiveError(f"{p}: no such archive")
    try:
        check_file(p)
        damaged = False
    except ArchiveDamagedError:
        damaged = True
    salvaged: dict = {}
    if not damaged:
        with WriterLock(p):  # refuses while a writer runs (its file moves under a survey)
            s = survey(p)
        damaged = not s.readable or s.commit < s.commits - 1
    if damaged:
        salvaged = _salvage_locked(p)
    try:
        out = _recover(p)
    except (ArchiveDamagedError, OSError, RuntimeError, KeyError) as exc:
        if salvaged or isinstance(exc, UsageError):
            raise
        # damage the survey cannot see (a name lookup in a corrupt link heap): rewriting
        # every object into a new file leaves it behind
        salvaged = _salvage_locked(p)
        out = _recover(p)
    if salvaged:
        out["salvaged"] = salvaged
    return out


def _salvage_locked(p: Path) -> dict:
    with WriterLock(p):
        return salvage(p)


def _recover(p: Path) -> dict:
    """What the next writer does: clear stale flags, cut back to the last commit, close
    the interrupted pass; then the archive's summary."""
    with open_archive(p) as arc:
        mission = SimpleNamespace(name=arc.mission_name,
                                  spacecraft_id=None if arc.spacecraft_id < 0 else arc.spacecraft_id,
                                  apids={}, source_text="")
    w = ArchiveWriter(p, mission)
    try:
        rec = dict(w.recovered)
    finally:
        w.close()
    with open_archive(p) as arc:
        passes = arc.passes
        return {"archive": str(p),
                "cleared_flags": bool(rec.get("cleared_flags")),
                "interrupted_passes": rec.get("interrupted_passes", []),
                "truncated": rec.get("truncated", {}),
                "passes": len(passes),
                "packets": arc.packet_count(),
                "status": {PASS_STATUS[s]: int(k) for s, k in
                           zip(*np.unique(passes["status"], return_counts=True))} if len(passes) else {}}
