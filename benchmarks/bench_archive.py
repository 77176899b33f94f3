"""Archive write throughput per compression choice: Mbit/s of packet bytes, packets/s, peak RSS.

Each configuration runs in its own process (peak RSS is per process) and appends
the same traffic: housekeeping packets of 64 bytes with 8 decoded fields and an
onboard time, and payload packets of 200..1800 random bytes (raw only), mixed
10:1 by count, in batches as the pipeline hands them over, with the writer's
default flush policy. Sequence counts and times advance every batch, so the
deduplicator sees no duplicates but does all its work. The "replayed" row then appends
the same traffic again as a second pass (every packet a duplicate: the deduplicator's
lookups, and the read-back of the first pass's keys from the archive).

``python -m benchmarks.bench_archive [--quick]`` prints the rows.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "none": None,
    "default": "default",  # shuffle + gzip 1 on header columns; fields and raw bytes stored
    "default+fields-gzip": {"fields": {"compression": "gzip", "compression_opts": 1, "shuffle": True}},
    "gzip-all": "gzip",    # gzip 1 on every dataset, raw packet bytes too
}


def _traffic(n_hk: int, n_pl: int, seed: int = 1):
    from groundseg.link.records import PACKET_DTYPE, PacketBatch
    from groundseg.telemetry import DecodedApid
    rng = np.random.default_rng(seed)

    def batch(apid, lengths):
        n = len(lengths)
        off = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=off[1:])
        data = rng.integers(0, 256, int(off[-1]), dtype=np.uint8)
        if apid == 100:  # housekeeping: slowly varying values, like real telemetry
            data = np.repeat(rng.integers(0, 256, int(off[-1]) // 16 + 1, dtype=np.uint8), 16)[:int(off[-1])]
        h = np.zeros(n, PACKET_DTYPE)
        h["apid"] = apid
        h["sec_hdr"] = 1
        h["seq_flags"] = 3
        h["seq_count"] = np.arange(n) & 0x3FFF
        h["length"] = lengths
        h["reception_time"] = 1.8e9 + np.arange(n) * 1e-3
        h["frame_time"] = np.nan
        return PacketBatch(data, off, h)

    hk = batch(100, np.full(n_hk, 64))
    t = 1.7e9 + np.arange(n_hk) * 1e-3
    fields = {f"f{i}": (np.sin(t * (i + 1)) * 100).astype(np.float64) for i in range(6)}
    fields["mode"] = (np.arange(n_hk) // 1000 % 4).astype(np.uint8)
    fields["counter"] = np.arange(n_hk, dtype=np.uint32)
    pl = batch(200, rng.integers(200, 1800, n_pl))
    return (DecodedApid(100, "hk", hk, t, fields, {k: "V" for k in fields}, {}),
            DecodedApid(200, "payload", pl, np.full(n_pl, np.nan)))


def _current_rss_mb() -> float:
    """RSS now (MB). Not ``ru_maxrss``: Linux keeps that high-water mark across fork and
    exec, so a worker started by a large process (a long pytest run) reports its parent's."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(out_dir: str, compression, total_packets: int, batch_packets: int, replay: bool = False) -> dict:
    """Write ``total_packets`` into a fresh archive; runs in its own process. ``replay``:
    then append the same traffic again as a second pass, timed on its own."""
    from groundseg.archive.hdf5 import ArchiveWriter
    mission = SimpleNamespace(name="bench", spacecraft_id=1, source_text="",
                              apids={100: SimpleNamespace(id=100, name="hk"),
                                     200: SimpleNamespace(id=200, name="payload")})
    n_pl = max(1, batch_packets // 11)
    hk, pl = _traffic(batch_packets - n_pl, n_pl)
    rounds = max(1, total_packets // batch_packets)
    # warm-up: compile kernels outside the clock
    with ArchiveWriter(Path(out_dir) / "warm", mission, compression=compression) as w:
        w.begin_pass("warm-up")
        w.append(decoded={100: hk, 200: pl})
        w.end_pass({})
    rss0 = _current_rss_mb()
    start = [(d, d.packets.header.copy(), d.onboard_time.copy()) for d in (hk, pl)]

    def one_pass(name):
        for d, h, t in start:  # the same traffic every pass
            d.packets.header[:] = h
            d.onboard_time[:] = t
        packets = nbytes = 0
        t0 = time.perf_counter()
        with ArchiveWriter(Path(out_dir), mission, compression=compression) as w:
            w.begin_pass(name)
            for r in range(rounds):
                for d in (hk, pl):
                    d.packets.header["seq_count"] = (d.packets.header["seq_count"] + len(d.packets)) & 0x3FFF
                    d.packets.header["reception_time"] += 3600.0
                hk.onboard_time += 3600.0
                w.append(decoded={100: hk, 200: pl})
                packets += len(hk.packets) + len(pl.packets)
                nbytes += len(hk.packets.data) + len(pl.packets.data)
            info = w.end_pass({})
        return packets, nbytes, time.perf_counter() - t0, info

    packets, nbytes, seconds, info = one_pass("bench")
    size = (Path(out_dir) / "bench.h5").stat().st_size
    assert info["packets"] == packets, info
    out = {"packets": packets, "bytes": nbytes, "seconds": seconds, "file_bytes": size,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_mb": rss0}
    if replay:
        _, _, out["replay_seconds"], info = one_pass("replayed")
        assert info["packets"] == 0 and info["duplicates"] == packets, info
        out["replay_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(quick: bool) -> list[dict]:
    total = 300_000 if quick else 2_000_000
    batch = 50_000
    rows = []
    for name, comp in CONFIGS.items():
        tmp = tempfile.mkdtemp(prefix="bench_archive_")
        try:
            replay = name == "default"
            code = ("import json,sys; sys.path.insert(0, %r); from benchmarks.bench_archive import worker; "
                    "print(json.dumps(worker(%r, %r, %d, %d, %r)))" % (str(ROOT), tmp, comp, total, batch, replay))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                rows.append({"stage": "archive_write", "params": name,
                             "error": (r.stderr.strip().splitlines() or ["failed"])[-1]})
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append({"stage": "archive_write", "params": f"compression={name}, {res['packets']:,} packets",
                     "mbit_s": res["bytes"] * 8 / res["seconds"] / 1e6,
                     "mpackets_s": res["packets"] / res["seconds"] / 1e6,
                     "peak_rss_mb": res["peak_rss_mb"], "seconds": res["seconds"],
                     "bytes": res["bytes"], "file_bytes": res["file_bytes"],
                     "file_ratio": res["file_bytes"] / res["bytes"]})
        if "replay_seconds" in res:
            rows.append({"stage": "archive_write", "params": f"compression={name}, the same "
                         f"{res['packets']:,} packets replayed (all duplicates)",
                         "mbit_s": res["bytes"] * 8 / res["replay_seconds"] / 1e6,
                         "mpackets_s": res["packets"] / res["replay_seconds"] / 1e6,
                         "peak_rss_mb": res["replay_peak_rss_mb"], "seconds": res["replay_seconds"]})
    return rows


def _kind(name: str, ds) -> str | None:
    """Column kind of a dataset path, as docs/archive.md tabulates them."""
    leaf = name.rsplit("/", 1)[-1]
    if ds.attrs.get("heap", False):
        return "raw bytes" if name.startswith("packets/") else None
    if not name.startswith("packets/"):
        return "frame records" if name.startswith("frames/") else None
    if "/fields/" in name:
        return "decoded fields"
    if leaf == "dedup_key":
        return "dedup keys"
    if leaf.endswith("_time"):
        return "time columns"
    return "header columns"


def codecs(archive: str, sample: int = 16 << 20, rows: int = 32768, repeat: int = 3) -> list[dict]:
    """Ratio and speed of the codecs an h5dump 1.10 and a plain h5py read (deflate with or
    without byte shuffle) on an archive's own columns, per column kind: ``rows`` rows from
    the middle of every dataset of the kind (up to ``sample`` bytes per kind), in 256 KiB
    chunks as the archive stores them."""
    import zlib
    import h5py
    data: dict[str, list] = {}
    with h5py.File(archive, "r", locking=False) as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or obj.shape[0] == 0:
                return
            kind = _kind(name, obj)
            if kind is None:
                return
            have = sum(a.nbytes for a in data.get(kind, []))
            if have >= sample:
                return
            row_bytes = max(1, obj.dtype.itemsize * int(np.prod(obj.shape[1:])))
            n = max(1, min(obj.shape[0], rows if not obj.attrs.get("heap", False) else 1 << 20,
                           (sample - have) // row_bytes))
            start = (obj.shape[0] - n) // 2
            a = np.ascontiguousarray(obj[start:start + n])
            if a.dtype.kind in "SUO":
                return
            data.setdefault(kind, []).append(a)
        f.visititems(visit)
    out = []
    for kind, arrays in data.items():
        for label, level, shuffle in (("gzip 1 + shuffle", 1, True), ("gzip 1", 1, False),
                                      ("gzip 4 + shuffle", 4, True), ("gzip 6 + shuffle", 6, True)):
            raw = comp = 0
            t_c = t_d = 0.0
            for a in arrays:
                size = max(1, a.dtype.itemsize * int(np.prod(a.shape[1:])))
                buf = a.view(np.uint8).reshape(-1)
                step = (256 << 10) // size * size or size
                for s0 in range(0, len(buf), step):
                    chunk = buf[s0:s0 + step]
                    if shuffle and size > 1 and len(chunk) % size == 0:
                        chunk = np.ascontiguousarray(chunk.reshape(-1, size).T)
                    b = chunk.tobytes()
                    t0 = time.perf_counter()
                    for _ in range(repeat):
                        z = zlib.compress(b, level)
                    t1 = time.perf_counter()
                    for _ in range(repeat):
                        zlib.decompress(z)
                    t2 = time.perf_counter()
                    raw += len(b)
                    comp += len(z)
                    t_c += (t1 - t0) / repeat
                    t_d += (t2 - t1) / repeat
            out.append({"kind": kind, "codec": label, "mb": raw / 1e6, "ratio": raw / max(1, comp),
                        "compress_mb_s": raw / 1e6 / max(t_c, 1e-9),
                        "decompress_mb_s": raw / 1e6 / max(t_d, 1e-9)})
    return out


if __name__ == "__main__":
    if "--codecs" in sys.argv:
        for row in codecs(sys.argv[sys.argv.index("--codecs") + 1]):
            print(f"{row['kind']:<15s} {row['codec']:<17s} {row['mb']:7.2f} MB  ratio {row['ratio']:6.2f}  "
                  f"compress {row['compress_mb_s']:7.1f} MB/s  decompress {row['decompress_mb_s']:7.1f} MB/s")
        sys.exit(0)
    for row in run("--quick" in sys.argv):
        print(json.dumps(row))
