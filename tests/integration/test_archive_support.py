"""Helpers shared by the archive tests: a tiny mission on disk and synthetic Space Packets.

No tests here; the builders are plain numpy so they stay fast with NUMBA_DISABLE_JIT=1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from groundseg.link.records import PACKET_DTYPE, PacketBatch

CUC_EPOCH_UNIX = -378691200.0  # 1958-01-01 in UNIX seconds

HK_CSV = """name,data_type,bit_length,units,calibration,description
coarse_time,uint,32,s,,CUC coarse time
fine_time,uint,16,,,CUC fine time
temp,int,16,degC,"poly:-40.0,0.5",a temperature
volt,uint,16,V,,a voltage
"""

HK2_CSV = HK_CSV + "current,uint,16,A,,a new field\n"


def write_mission(folder: Path, name: str = "unit", scid: int = 7, hk_csv: str = HK_CSV,
                  extra_apid: bool = False) -> Path:
    """A packets-level mission: APID 10 'hk' (fields, CUC time), 11 'payload' (raw);
    ``extra_apid`` declares APID 12 'extra' (raw) too. Returns the TOML path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hk.csv").write_text(hk_csv)
    text = f"""[mission]
name = "{name}"
spacecraft_id = {scid}

[[apids]]
id = 10
name = "hk"
definition = "hk.csv"
time = "cuc:4,2"

[[apids]]
id = 11
name = "payload"
"""
    if extra_apid:
        text += '\n[[apids]]\nid = 12\nname = "extra"\n'
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def make_batch(specs: list[tuple[int, bytes, int]], reception_time=np.nan,
               frame_time=np.nan) -> PacketBatch:
    """A PacketBatch from (apid, body after the primary header, seq_count) triples."""
    n = len(specs)
    lengths = np.array([6 + len(b) for _, b, _ in specs], np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.zeros(int(offsets[-1]), np.uint8)
    header = np.zeros(n, PACKET_DTYPE)
    for i, (apid, body, seq) in enumerate(specs):
        sec = 1 if apid == 10 else 0
        w0 = (sec << 11) | apid
        w1 = (3 << 14) | (seq & 0x3FFF)
        hdr = bytes([w0 >> 8, w0 & 0xFF, w1 >> 8, w1 & 0xFF]) + (len(body) - 1).to_bytes(2, "big")
        data[offsets[i]:offsets[i + 1]] = np.frombuffer(hdr + body, np.uint8)
        header[i] = (apid, 0, 0, sec, 3, seq & 0x3FFF, lengths[i], 0, np.nan, np.nan, False)
    header["reception_time"] = reception_time
    header["frame_time"] = frame_time
    return PacketBatch(data, offsets, header)


def hk_body(t: float, temp: int, volt: int) -> bytes:
    s = t - CUC_EPOCH_UNIX
    coarse = int(s)
    fine = int(round((s - coarse) * 65536)) & 0xFFFF
    return (coarse.to_bytes(4, "big") + fine.to_bytes(2, "big") + int(temp).to_bytes(2, "big", signed=True)
            + int(volt).to_bytes(2, "big"))


def hk2_body(t: float, temp: int, volt: int, current: int) -> bytes:
    return hk_body(t, temp, volt) + int(current).to_bytes(2, "big")


def mixed_batch(n: int, t0: float = 1.7e9, seq0: int = 0, seed: int = 0, rx0: float = 1.8e9,
                undeclared: bool = True, hk2: bool = False) -> PacketBatch:
    """n rounds of: hk (fields, onboard time), payload (raw, variable length, no time),
    and APID 99 (undeclared) every third round."""
    rng = np.random.default_rng(seed)
    specs = []
    rx = []
    for i in range(n):
        t = t0 + i
        body = hk2_body(t, int(rng.integers(-100, 100)), int(rng.integers(0, 60000)), i) if hk2 else \
            hk_body(t, int(rng.integers(-100, 100)), int(rng.integers(0, 60000)))
        specs.append((10, body, seq0 + i))
        specs.append((11, rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes(), seq0 + i))
        rx += [rx0 + i, rx0 + i + 0.5]
        if undeclared and i % 3 == 0:
            specs.append((99, bytes([i & 0xFF, 1, 2]), seq0 + i))
            rx.append(rx0 + i + 0.7)
    return make_batch(specs, reception_time=np.array(rx))


def split_stream(data: bytes) -> list[bytes]:
    """Reference split of a Space Packet stream (slow, obviously right)."""
    out = []
    i = 0
    while i + 6 <= len(data):
        n = 7 + int.from_bytes(data[i + 4:i + 6], "big")
        out.append(data[i:i + n])
        i += n
    return out
