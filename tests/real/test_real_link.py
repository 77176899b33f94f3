"""The link layer on real downlinks (see each capture's PROVENANCE.md for the known-good decoding).

All of these enter at level "frames": FrameBatch.from_frames of the file reshaped to frames.
"""
import hashlib
from datetime import datetime, timezone
from collections import Counter

import numpy as np
import pytest

from groundseg.coding.frame_batch import FrameBatch
from groundseg.link.decoder import LinkConfig, LinkDecoder
from groundseg.link.packets import PacketStreamSplitter
from groundseg.link.records import PacketBatch
from tests.unit.test_packets import reference_extract, reference_sequence

pytestmark = pytest.mark.real

TW2_HDR = [  # the order of PROVENANCE.md's table
    "tianwen-2_2026_05_25_15_52_15", "tianwen-2_2026_05_25_16_03_18", "dwingeloo_kamo_2026_05_25_19_43_00",
    "dwingeloo_tianwen-2_2026_05_25_20_14_02", "tianwen2_2026_05_26_11_53_49", "tianwen2_2026_05_26_12_08_46"]
TW2_HDR_FRAMES = [601, 299, 59, 300, 120, 224]
TW2_HDR_APIDS = {17: 1598, 18: 1598, 19: 1598, 20: 1598, 21: 1598, 272: 1598, 528: 1598, 32: 1598,
                 1552: 1598, 1554: 801, 33: 801, 34: 801, 22: 797, 35: 797, 36: 797, 28: 493, 26: 492,
                 1553: 276, 1556: 275, 1557: 275, 1555: 275, 25: 154, 24: 152}
TW2_LENGTH_FIELD = {17: 38, 18: 12, 19: 45, 20: 25, 21: 9, 22: 49, 24: 126, 25: 104, 26: 12, 28: 20, 32: 93,
                    33: 9, 34: 16, 35: 99, 36: 87, 272: 7, 528: 7, 1552: 175, 1553: 175, 1554: 175,
                    1555: 175, 1556: 175, 1557: 175}
TW2_LDR_APIDS = {1557: 145, 21: 73, 17: 73, 1552: 50, 272: 50, 528: 50, 32: 49, 28: 37, 33: 20, 26: 20,
                 22: 20, 24: 14, 25: 14, 1555: 14, 19: 14, 1556: 13, 36: 10, 18: 10, 20: 10, 34: 10, 35: 10}
TW2_TIME = {"offset": 0, "length": 6, "byteorder": "little", "unit": 2 ** -16, "epoch": "2019-12-31T16:00:00Z"}
CE5_APIDS = {40: 396, 1030: 199, 41: 148, 52: 130, 42: 98, 43: 94, 13: 84, 5: 83, 28: 81, 14: 81, 33: 79,
             49: 74, 1040: 73, 11: 46, 27: 45, 29: 44, 34: 43, 51: 42, 39: 42, 4: 24, 31: 24, 7: 23, 48: 22,
             30: 22, 35: 22, 2: 12, 3: 12, 1031: 12, 1034: 12, 1032: 11, 1039: 11, 50: 11, 58: 6, 6: 6, 16: 6,
             25: 6, 26: 6, 60: 6, 12: 3}


def frames_of(path, length):
    data = np.fromfile(path, np.uint8)
    assert len(data) % length == 0, f"{path.name} is not a whole number of {length}-byte frames"
    return data.reshape(-1, length)


def tw2_file(captures, stem):
    (path,) = (captures / "tianwen2-aos").glob(stem + "*_frames.u8")
    return path


def apid_counts(c):
    return {int(k): v["count"] for k, v in c["packets"].items() if v["count"]}


def packets_list(pb: PacketBatch):
    return [pb.packet(i) for i in range(len(pb))]


def mpdu_zones(frames, cfg, rows):
    """Packet zones and FHPs of AOS frames, sliced in plain numpy for the reference extractor."""
    start = cfg.header_length + 2
    z = frames[rows, start:cfg.frame_length]
    fhp = ((frames[rows, cfg.header_length].astype(int) & 7) << 8) | frames[rows, cfg.header_length + 1]
    return z, fhp


def test_tianwen2_hdr_files_each_their_own_stream(captures):
    cfg = LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=237, insert_zone=8, insert_zone_time=TW2_TIME)
    dec = LinkDecoder(cfg)
    outs, all_frames = [], []
    for stem, n in zip(TW2_HDR, TW2_HDR_FRAMES):
        frames = frames_of(tw2_file(captures, stem), 892)
        assert len(frames) == n
        dec.reset()
        outs.append(dec.push(FrameBatch.from_frames(frames)))
        all_frames.append(frames)
        # no VC frame-count gap inside any file
        assert not outs[-1].frames["gap_before"].any(), stem
    dec.flush()
    c = dec.stats.to_dict()
    rec = np.concatenate([o.frames for o in outs])
    assert len(rec) == 1603
    assert c["frames"] == {"rejected": 5, "crc_failed": 0, "idle": 0}
    assert c["rejects"] == {"version": 5}
    assert c["virtual_channels"] == {"1": {"frames": 1598, "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}}
    pb = PacketBatch.concatenate([o.packets for o in outs])
    assert len(pb) == 21568
    assert apid_counts(c) == TW2_HDR_APIDS
    for apid, field in TW2_LENGTH_FIELD.items():
        assert (pb.header["length"][pb.header["apid"] == apid] == field + 7).all(), apid
    assert (pb.header["seq_flags"] == 3).all() and (pb.header["sec_hdr"] == 0).all()
    # one packet in progress at the end of each file is dropped (its header was seen)
    assert sum(v["dropped_incomplete"] for v in c["packets"].values()) == 6
    # insert-zone time: the first frame of the first file, 2026-05-25 (Beijing-epoch counter)
    t = rec["insert_zone_time"][rec["status"] == 0]
    assert np.all(np.isfinite(t))
    day = datetime(2026, 5, 25, tzinfo=timezone.utc).timestamp()
    assert day <= t[0] < day + 86400   # 2026-05-25, as the recording's file name says
    assert (np.diff(t[:601 - 2]) > 0).all()
    # the kernel agrees with the plain-Python reference, file by file, sequence gaps included
    ref_packets = []
    for frames, out in zip(all_frames, outs):
        rows = np.flatnonzero(out.frames["status"] == 0)
        z, fhp = mpdu_zones(frames, cfg, rows)
        ref_packets += reference_extract(z, fhp, np.zeros(len(rows), bool))[0]
    assert packets_list(pb) == ref_packets
    # the sequence counts restart their bookkeeping at each file
    gaps = Counter()
    missing = Counter()
    repeats = Counter()
    for out in outs:
        g, m, r = reference_sequence(packets_list(out.packets))
        gaps.update(g)
        missing.update(m)
        repeats.update(r)
    for k, v in c["packets"].items():
        assert ((v["sequence_gaps"], v["sequence_missing"], v["sequence_repeats"])
                == (gaps[int(k)], missing[int(k)], repeats[int(k)])), k


def test_tianwen2_hdr_concatenated_has_five_gaps_at_the_file_boundaries(captures):
    """PROVENANCE's "5 VC frame-count gaps, one partial packet dropped at each" are the file
    boundaries of the concatenated set, not gaps inside a file."""
    frames = np.concatenate([frames_of(tw2_file(captures, s), 892) for s in TW2_HDR])
    dec = LinkDecoder(LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=237, insert_zone=8))
    out = dec.push(FrameBatch.from_frames(frames))
    dropped_before_flush = sum(v["dropped_incomplete"] for v in dec.stats.to_dict()["packets"].values())
    dec.flush()
    boundaries = np.cumsum(TW2_HDR_FRAMES)[:-1]
    assert np.flatnonzero(out.frames["gap_before"]).tolist() == boundaries.tolist()
    assert dropped_before_flush == 5
    assert len(out.packets) == 21568
    assert apid_counts(dec.stats.to_dict()) == TW2_HDR_APIDS


def test_tianwen2_ldr(captures):
    cfg = LinkConfig(frame_type="AOS", frame_length=220, spacecraft_id=237, insert_zone=8, insert_zone_time=TW2_TIME)
    dec = LinkDecoder(cfg)
    frames = frames_of(tw2_file(captures, "tw2-lowdr"), 220)
    assert len(frames) == 299
    out = dec.push(FrameBatch.from_frames(frames))
    dec.flush()
    c = dec.stats.to_dict()
    assert c["virtual_channels"] == {"1": {"frames": 299, "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}}
    assert len(out.packets) == 706
    assert apid_counts(c) == TW2_LDR_APIDS
    z, fhp = mpdu_zones(frames, cfg, np.arange(299))
    assert packets_list(out.packets) == reference_extract(z, fhp, np.zeros(299, bool))[0]


def test_change5(captures):
    cfg = LinkConfig(frame_type="AOS", frame_length=220, spacecraft_id=108, insert_zone=8,
                     insert_zone_time={"offset": 4, "length": 4, "byteorder": "little", "unit": 1,
                                       "epoch": "2012-08-01T00:00:00Z"})
    dec = LinkDecoder(cfg)
    frames = frames_of(captures / "change5-aos" / "ce5_ata_2021-09-18_frames.u8", 220)
    out = dec.push(FrameBatch.from_frames(frames))
    dec.flush()
    c = dec.stats.to_dict()
    rec = out.frames
    assert len(rec) == 396 and (rec["status"] == 0).all()
    assert rec["vcfc"][0] == 5417483 and rec["vcfc"][-1] == 5417884
    assert c["virtual_channels"] == {"1": {"frames": 396, "idle": 0, "gaps": 1, "frames_lost": 6, "repeats": 0}}
    (gap_at,) = np.flatnonzero(rec["gap_before"])
    assert (rec["vcfc"][gap_at - 1], rec["vcfc"][gap_at]) == (5417877, 5417884)
    assert len(out.packets) == 2139 and apid_counts(c) == CE5_APIDS
    for apid in CE5_APIDS:   # each APID has a single packet length
        assert len(np.unique(out.packets.header["length"][out.packets.header["apid"] == apid])) == 1
    assert (out.packets.header["length"][out.packets.header["apid"] == 40] == 62).all()
    # first time stamp 2021-09-18T07:59:43 UTC
    assert rec["insert_zone_time"][0] == datetime(2021, 9, 18, 7, 59, 43, tzinfo=timezone.utc).timestamp()
    gaps = rec["gap_before"]
    z, fhp = mpdu_zones(frames, cfg, np.arange(396))
    assert packets_list(out.packets) == reference_extract(z, fhp, gaps)[0]


def test_queqiao2_vca_and_none(captures):
    frames = frames_of(captures / "queqiao" / "queqiao2_frames.u8", 220)
    for kind in ("vca", "none"):
        dec = LinkDecoder(LinkConfig(frame_type="AOS", frame_length=220, spacecraft_id=179, vc_data={0: kind}))
        out = dec.push(FrameBatch.from_frames(frames))
        c = dec.stats.to_dict()
        assert c["virtual_channels"] == {"0": {"frames": 72, "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}}
        assert out.frames["vcfc"].tolist() == list(range(10242, 10314))
        assert len(out.packets) == 0 and c["packets"] == {}
        if kind == "vca":
            assert len(out.vca) == 72 and np.array_equal(out.vca.data, frames[:, 6:])
            # the payload starts with a 32-bit counter (PROVENANCE): it counts up by one
            counter = out.vca.data[:, :4].astype(np.int64)
            value = (counter[:, 0] << 24) | (counter[:, 1] << 16) | (counter[:, 2] << 8) | counter[:, 3]
            assert (np.diff(value) == 1).all()
        else:
            assert len(out.vca) == 0


def snpp_frames(path, pn_sequence):
    cadus = np.fromfile(path, np.uint8).reshape(-1, 1024)
    assert (cadus[:, :4] == [0x1A, 0xCF, 0xFC, 0x1D]).all()
    # de-randomise the 1020-byte codeblock; RS (I=4) reports 0 errors, so the first 892 bytes are the frame
    return np.ascontiguousarray((cadus[:, 4:] ^ pn_sequence(1020))[:, :892])


def _pn(n):
    try:
        from groundseg.coding.randomizer import pn_sequence
        return pn_sequence(n)
    except ImportError:   # h(x) = x^8+x^7+x^5+x^3+1, all-ones seed
        reg, out = [1] * 8, []
        for _ in range(n * 8):
            out.append(reg[0])
            reg = reg[1:] + [reg[0] ^ reg[3] ^ reg[5] ^ reg[7]]
        return np.packbits(out)


def test_pn_sequence_start():
    assert _pn(8).tolist() == [0xFF, 0x48, 0x0E, 0xC0, 0x9A, 0x0D, 0x70, 0xBC]


def test_suomi_npp(captures):
    frames = snpp_frames(captures / "snpp-cadu" / "snpp_synchronized_cadus.dat", _pn)
    dec = LinkDecoder(LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=157))
    out = dec.push(FrameBatch.from_frames(frames))
    dec.flush()
    c = dec.stats.to_dict()
    assert c["virtual_channels"] == {"16": {"frames": 65, "idle": 0, "gaps": 1, "frames_lost": 1, "repeats": 0}}
    assert out.frames["vcfc"][0] == 9842876 and out.frames["vcfc"][-1] == 9842941
    h = out.packets.header
    assert h["apid"].tolist() == [802] + [803] * 11
    assert h["length"].tolist() == [3006, 180, 4090, 5098, 5058, 5026, 5122, 5090, 5106, 5130, 5074, 5118]
    assert 9860 not in h["seq_count"][h["apid"] == 803].tolist()
    assert c["packets"]["803"]["sequence_gaps"] == 1 and c["packets"]["803"]["sequence_missing"] == 1
    assert c["packets"]["802"]["count"] == 1 and c["packets"]["803"]["count"] == 11
    assert hashlib.md5(out.packets.data.tobytes()).hexdigest() == "5e11051d86c46ddc3500904c99bbe978"
    # JPSS segments its large packets: first/continuation/last flags are delivered as received
    assert set(h["seq_flags"].tolist()) <= {0, 1, 2, 3}


def test_suomi_npp_two_vcids(captures):
    frames = snpp_frames(captures / "snpp-cadu" / "snpp_7cadus_2vcids.dat", _pn)
    dec = LinkDecoder(LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=157))
    out = dec.push(FrameBatch.from_frames(frames))
    c = dec.stats.to_dict()
    assert {k: v["frames"] for k, v in c["virtual_channels"].items()} == {"6": 4, "16": 3}
    assert out.frames["vcfc"][out.frames["vcid"] == 6].tolist() == list(range(6820673, 6820677))
    assert out.frames["vcfc"][out.frames["vcid"] == 16].tolist() == list(range(9847470, 9847473))
    vc6 = out.packets.select(out.packets.header["vcid"] == 6)
    assert len(vc6) == 1
    assert (vc6.header["apid"][0], vc6.header["seq_count"][0], vc6.header["length"][0]) == (1341, 4476, 1862)


def test_cygnss_packet_stream(captures):
    root = captures / "cygnss-packets"
    (tlm,) = root.glob("*.tlm")
    data = np.fromfile(tlm, np.uint8)
    sp = PacketStreamSplitter()
    parts = [sp.push(data[k:k + 1000]) for k in range(0, len(data), 1000)]   # chunks cut packets anywhere
    parts.append(sp.flush())
    pb = PacketBatch.concatenate([o.packets for o in parts])
    assert sum(len(o.rejects) for o in parts) == 0
    c = sp.stats.to_dict()
    assert len(pb) == 101 and c["rejects"] == {}
    assert apid_counts(c) == {384: 4, 386: 4, 391: 1, 392: 4, 393: 40, 394: 39, 1313: 9}
    assert (pb.header["version"] == 0).all() and (pb.header["sec_hdr"] == 1).all()
    assert (pb.header["seq_flags"] == 3).all() and (pb.header["type"] == 0).all()
    for apid in np.unique(pb.header["apid"]):
        mine = pb.select(pb.header["apid"] == apid)
        truth = (root / "split_by_apid" / f"apid{int(apid):05d}.tlm").read_bytes()
        assert mine.data.tobytes() == truth, apid
    # sequence gaps, checked against the reference on the truth: APIDs 384, 386 and 392 step by 10
    gaps, missing, repeats = reference_sequence(packets_list(pb))
    for apid in (384, 386, 392):
        seq = pb.header["seq_count"][pb.header["apid"] == apid]
        assert (np.diff(seq.astype(int)) == 10).all()
        assert c["packets"][str(apid)]["sequence_gaps"] == gaps[apid] == 3
        assert c["packets"][str(apid)]["sequence_missing"] == missing[apid] == 27
    assert sum(v["sequence_gaps"] for v in c["packets"].values()) == 9
