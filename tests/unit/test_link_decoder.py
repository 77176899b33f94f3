"""LinkDecoder: frames -> packets with the counting rules of docs/report.md, on frames built by our encoders."""
import numpy as np
import pytest

from groundseg.coding.crc import append_fecf
from groundseg.coding.frame_batch import INTEGRITY_CRC_FAILED, INTEGRITY_UNCORRECTABLE, FrameBatch
from groundseg.link import aos, clcw, packets as P, tm
from groundseg.link.decoder import LinkConfig, LinkDecoder
from groundseg.link.records import REJECT_CODE, LinkStats, PacketBatch

NO = 0x7FF


def zone_length(cfg: LinkConfig, vcid: int) -> int:
    return cfg.zone_length(vcid)


def build_frames(cfg: LinkConfig, vcid, counts, zones, fhp, ocf_words=None, iz=None, mcfc=None):
    """Frames of one VC from packet zones: the frame type's encoder (tm.py / aos.py / clcw.py)."""
    m = len(zones)
    if ocf_words is None and cfg.ocf_by_vcid()[vcid]:
        ocf_words = clcw.encode(vcid=vcid % 64, report_value=np.arange(m) % 256)
    frames = cfg.ft.build_frames(cfg, vcid, counts, zones, fhp, mcfc=mcfc, ocf_words=ocf_words, insert_zone=iz)
    assert frames.shape[1] == cfg.frame_length
    return frames


def vc_traffic(cfg, vcid, rng, n_packets, first_count=0, apids=(100, 101, 102)):
    """Packets of random APIDs and lengths (consecutive sequence counts per APID) in frames."""
    apid = rng.choice(apids, n_packets)
    seq = np.zeros(n_packets, np.int64)
    for a in np.unique(apid):
        seq[apid == a] = np.arange((apid == a).sum())
    payloads = [bytes(rng.integers(0, 256, int(k)).astype(np.uint8)) for k in rng.integers(1, 60, n_packets)]
    stream, starts = P.build_packets(apid, seq, payloads)
    h = P.decode_primary_headers(stream, starts)
    zones, fhp = P.pack_mpdu(stream, starts, zone_length(cfg, vcid))
    counts = first_count + np.arange(len(zones))
    packets = [stream[s:s + n].tobytes() for s, n in zip(starts, h["length"])]
    return build_frames(cfg, vcid, counts, zones, fhp), packets


def decode_all(cfg, frames, quality=None, cuts=()):
    dec = LinkDecoder(cfg)
    batch = FrameBatch.from_frames(frames)
    if quality is not None:
        batch.quality[:] = quality
    bounds = [0, *sorted(cuts), len(frames)]
    outs = [dec.push(FrameBatch(batch.frames[a:b], batch.quality[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    dec.flush()
    return dec, outs


def packets_of(outs):
    pb = PacketBatch.concatenate([o.packets for o in outs])
    return [pb.packet(i) for i in range(len(pb))], pb


AOS_CFG = dict(frame_type="AOS", frame_length=120, spacecraft_id=42, fecf=True, ocf={2}, insert_zone=4,
               fhec=True)


def test_aos_round_trip_two_vcs_with_fhec_iz_ocf_fecf():
    cfg = LinkConfig(**AOS_CFG)
    rng = np.random.default_rng(0)
    f1, p1 = vc_traffic(cfg, 1, rng, 40)
    f2, p2 = vc_traffic(cfg, 2, rng, 30, apids=(200, 201))
    order = np.argsort(np.concatenate([np.arange(len(f1)) * 2, np.arange(len(f2)) * 2 + 1]), kind="stable")
    frames = np.concatenate([f1, f2])[order]
    dec, outs = decode_all(cfg, frames)
    got, pb = packets_of(outs)
    assert [p for p, v in zip(got, pb.header["vcid"]) if v == 1] == p1
    assert [p for p, v in zip(got, pb.header["vcid"]) if v == 2] == p2
    c = dec.stats.to_dict()
    assert c["virtual_channels"] == {"1": {"frames": len(f1), "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0},
                                     "2": {"frames": len(f2), "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}}
    assert c["frames"] == {"rejected": 0, "crc_failed": 0, "idle": 0}
    assert sum(v["count"] for v in c["packets"].values()) == 70
    rec = outs[0].frames
    assert (rec["status"] == 0).all() and (rec["crc"] == 1).all()
    assert rec["has_ocf"].tolist() == (rec["vcid"] == 2).tolist()
    d = clcw.decode(rec["ocf"][rec["has_ocf"]])
    assert (d["vcid"] == 2).all() and d["report_value"].tolist() == list(range(len(f2)))
    assert rec["mcfc"].tolist() == [-1] * len(rec)


def test_fhec_corrects_header_and_rejects_beyond():
    cfg = LinkConfig(**AOS_CFG)
    rng = np.random.default_rng(1)
    frames, pk = vc_traffic(cfg, 1, rng, 20)
    frames = frames.copy()
    frames[3, 1] ^= 0x0F          # one nibble of the VCID: corrected
    frames = append_fecf(frames[:, :-2])   # the error came before the FECF was computed
    q = FrameBatch.from_frames(frames).quality
    dec, outs = decode_all(cfg, frames, q)
    assert packets_of(outs)[0] == pk
    bad = frames.copy()
    bad[5, 0] ^= 0x01             # three nibbles: beyond the code
    bad[5, 1] ^= 0x11
    q = FrameBatch.from_frames(bad).quality
    q["crc"] = 1                  # isolate the FHEC check from the CRC check
    dec, outs = decode_all(cfg, bad, q)
    st = outs[0].frames["status"][5]
    assert st in (REJECT_CODE["fhec"], REJECT_CODE["version"], REJECT_CODE["scid"])


def tm_cfg(**kw):
    base = dict(frame_type="TM", frame_length=64, spacecraft_id=300, fecf=True, ocf=True)
    base.update(kw)
    return LinkConfig(**base)


def test_tm_round_trip_with_secondary_header():
    cfg = tm_cfg(tm_secondary_header=5)
    rng = np.random.default_rng(2)
    frames, pk = vc_traffic(cfg, 3, rng, 25)
    dec, outs = decode_all(cfg, frames)
    assert packets_of(outs)[0] == pk
    assert dec.stats.to_dict()["master_channel"] == {"gaps": 0, "frames_lost": 0, "repeats": 0}
    # a frame whose secondary header disagrees with the mission is refused as frame_length
    bad = frames.copy()
    bad[0, 6] = 0x07              # length field 8 instead of 5
    bad = append_fecf(bad[:, :-2])
    dec, outs = decode_all(cfg, bad)
    assert outs[0].frames["status"][0] == REJECT_CODE["frame_length"]


@pytest.mark.parametrize("kind,first,second,gap,lost,repeat", [
    ("TM", 255, 0, False, 0, 0), ("TM", 255, 1, True, 1, 0), ("TM", 10, 10, False, 0, 1), ("TM", 10, 5, True, 0, 0),
    ("AOS", 2 ** 24 - 1, 0, False, 0, 0), ("AOS", 2 ** 24 - 1, 2, True, 2, 0), ("AOS", 2 ** 28 - 1, 0, False, 0, 0),
    ("AOS", 5, 3, True, 0, 0), ("AOS", 7, 7, False, 0, 1),
])
def test_counter_wrap_and_gaps(kind, first, second, gap, lost, repeat):
    """An exact repeat (10 -> 10) is a repeat, not a gap; a backward jump is a gap with 0 lost."""
    cfg = tm_cfg() if kind == "TM" else LinkConfig(frame_type="AOS", frame_length=40, spacecraft_id=1)
    zl = zone_length(cfg, 0)
    zones = P.pack_mpdu(*P.build_packets([1, 1], [0, 1], [bytes(zl - 6), bytes(zl - 6)]), zl)
    frames = build_frames(cfg, 0, [first, second], zones[0][:2], zones[1][:2])
    if kind == "AOS" and first >= 2 ** 24:
        frames[1] = build_frames(cfg, 0, [2 ** 24, 2 ** 24], zones[0][:2], zones[1][:2])[1]
        frames[1, 2:5] = 0
        frames[1, 5] = 0x40       # usage flag, cycle 0 -> count 0 after 2^28 - 1
    dec, outs = decode_all(cfg, frames)
    rec = outs[0].frames
    assert rec["gap_before"].tolist() == [False, gap]
    assert rec["frames_lost"].tolist() == [0, lost]
    vc = dec.stats.to_dict()["virtual_channels"]["0"]
    assert (vc["gaps"], vc["frames_lost"], vc["repeats"]) == (int(gap), lost, repeat)


def test_idle_frames_update_counters_and_carry_no_packets():
    cfg = tm_cfg()
    rng = np.random.default_rng(3)
    frames, pk = vc_traffic(cfg, 1, rng, 10)
    m = len(frames)
    zl = zone_length(cfg, 1)
    idle = build_frames(cfg, 1, [m], np.full((1, zl), 0x55, np.uint8), [tm.FHP_IDLE])
    later, pk2 = vc_traffic(cfg, 1, rng, 5, first_count=m + 1, apids=(300,))
    # the second stream's APID 300 starts fresh; frames run on after the idle frame
    all_frames = np.concatenate([frames, idle, later])
    tm_counts = np.arange(len(all_frames)) % 256
    all_frames[:, 2] = tm_counts   # MC count continuous
    all_frames = append_fecf(all_frames[:, :-2])
    dec, outs = decode_all(cfg, all_frames)
    assert packets_of(outs)[0] == pk + pk2
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["1"] == {"frames": len(all_frames), "idle": 1, "gaps": 0, "frames_lost": 0, "repeats": 0}
    assert c["frames"]["idle"] == 1
    assert outs[0].frames["idle"].tolist() == [False] * m + [True] + [False] * len(later)
    assert outs[0].frames["has_ocf"][m]


def test_aos_idle_vc():
    cfg = LinkConfig(frame_type="AOS", frame_length=60, spacecraft_id=9)
    rng = np.random.default_rng(4)
    frames, pk = vc_traffic(cfg, 0, rng, 8)
    idle = build_frames(cfg, 63, [0, 1, 3], np.full((3, zone_length(cfg, 63)), 0x55, np.uint8), [NO] * 3)
    dec, outs = decode_all(cfg, np.concatenate([frames[:2], idle, frames[2:]]))
    assert packets_of(outs)[0] == pk
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["63"] == {"frames": 3, "idle": 3, "gaps": 1, "frames_lost": 1, "repeats": 0}
    assert c["frames"]["idle"] == 3 and c["virtual_channels"]["0"]["gaps"] == 0


@pytest.mark.parametrize("bad", ["rs_uncorrectable", "version", "scid", "crc"])
def test_refused_frames_do_not_touch_state(bad):
    cfg = tm_cfg()
    rng = np.random.default_rng(5)
    frames, pk = vc_traffic(cfg, 2, rng, 30)
    # a refused copy of frame 4 inserted after frame 3 (the real frame 4 still follows)
    junk = frames[4].copy()
    if bad == "version":
        junk[0] |= 0x40
    elif bad == "scid":
        junk[0] ^= 0x01
    if bad in ("version", "scid"):
        junk = append_fecf(junk[None, :-2])[0]
    elif bad == "crc":
        junk[20] ^= 0xFF
    with_junk = np.concatenate([frames[:4], junk[None, :], frames[4:]])
    q = FrameBatch.from_frames(with_junk).quality
    if bad == "rs_uncorrectable":
        q["integrity"][4] = INTEGRITY_UNCORRECTABLE
        with_junk[4, 10] ^= 0x5A
    dec, outs = decode_all(cfg, with_junk, q)
    assert packets_of(outs)[0] == pk
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["2"] == {"frames": len(frames), "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}
    reason = {"rs_uncorrectable": "rs_uncorrectable", "version": "version", "scid": "scid", "crc": "crc"}[bad]
    assert c["rejects"] == {reason: 1}
    assert c["frames"]["rejected"] == (1 if bad in ("version", "scid") else 0)
    assert c["frames"]["crc_failed"] == (1 if bad == "crc" else 0)
    rj = outs[0].rejects
    assert len(rj) == 1 and rj.raw(0) == with_junk[4].tobytes()
    assert outs[0].frames["status"][4] == REJECT_CODE[reason]


def test_gap_on_one_vc_does_not_disturb_another():
    cfg = LinkConfig(frame_type="AOS", frame_length=50, spacecraft_id=7)
    rng = np.random.default_rng(6)
    fa, pa = vc_traffic(cfg, 1, rng, 30)
    fb, pb_ = vc_traffic(cfg, 2, rng, 30, apids=(500,))
    keep = np.ones(len(fa), bool)
    keep[5] = False
    fa = fa[keep]
    frames = np.concatenate([x for pair in zip(fa, fb) for x in pair]
                            + list(fa[len(fb):]) + list(fb[len(fa):])).reshape(-1, 50)
    dec, outs = decode_all(cfg, frames)
    got, batch = packets_of(outs)
    assert [p for p, v in zip(got, batch.header["vcid"]) if v == 2] == pb_
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["1"]["gaps"] == 1 and c["virtual_channels"]["1"]["frames_lost"] == 1
    assert c["virtual_channels"]["2"]["gaps"] == 0
    assert c["packets"]["500"]["dropped_incomplete"] == 0
    assert c["packets"]["500"]["sequence_gaps"] == 0


def test_every_batch_boundary_gives_identical_results():
    cfg = LinkConfig(**AOS_CFG)
    rng = np.random.default_rng(7)
    f1, _ = vc_traffic(cfg, 1, rng, 25)
    f2, _ = vc_traffic(cfg, 2, rng, 15, apids=(9,))
    frames = np.concatenate([f1[:6], f2[:3], f1[7:], f2[4:]])   # one gap on each VC
    dec, outs = decode_all(cfg, frames)
    whole, _ = packets_of(outs)
    whole_counts = dec.stats.to_dict()
    whole_frames = outs[0].frames
    for cut in range(1, len(frames)):
        d, o = decode_all(cfg, frames, cuts=[cut])
        assert packets_of(o)[0] == whole
        assert d.stats.to_dict() == whole_counts
        rec = np.concatenate([x.frames for x in o])
        assert np.array_equal(rec["gap_before"], whole_frames["gap_before"])


def test_reset_forgets_counters_and_drops_in_progress():
    cfg = tm_cfg()
    rng = np.random.default_rng(8)
    frames, pk = vc_traffic(cfg, 0, rng, 20)
    dec = LinkDecoder(cfg)
    a = dec.push(FrameBatch.from_frames(frames[:3]))
    dec.reset()
    b = dec.push(FrameBatch.from_frames(frames[5:]))
    dec.flush()
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["0"]["gaps"] == 0
    assert c["master_channel"]["gaps"] == 0
    dropped = sum(v["dropped_incomplete"] for v in c["packets"].values())
    got = [a.packets.packet(i) for i in range(len(a.packets))] + [b.packets.packet(i) for i in range(len(b.packets))]
    assert set(got) <= set(pk)
    assert dropped >= 1
    assert not b.frames["gap_before"].any()


def test_vca_and_none_virtual_channels():
    cfg = LinkConfig(frame_type="AOS", frame_length=40, spacecraft_id=7, vc_data={3: "vca", 4: "none"})
    data = np.arange(5 * 34, dtype=np.uint8).reshape(5, 34)
    h = aos.pack_primary_header(7, 3, np.arange(5))
    frames3 = np.concatenate([h, data], axis=1)
    frames4 = np.concatenate([aos.pack_primary_header(7, 4, np.arange(5)), data], axis=1)
    dec, outs = decode_all(cfg, np.concatenate([frames3, frames4]))
    o = outs[0]
    assert len(o.packets) == 0
    assert np.array_equal(o.vca.data, data)
    assert o.vca.records["vcfc"].tolist() == list(range(5)) and (o.vca.records["vcid"] == 3).all()
    assert (o.frames["fhp"] == -1).all()
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["4"]["frames"] == 5 and c["packets"] == {}


def test_insert_zone_time():
    cfg = LinkConfig(frame_type="AOS", frame_length=60, spacecraft_id=1, insert_zone=8,
                     insert_zone_time={"offset": 0, "length": 6, "byteorder": "little", "unit": 2 ** -16,
                                       "epoch": "2019-12-31T16:00:00Z"})
    ticks = np.array([0, 65536 * 100 + 32768], np.int64)
    iz = np.zeros((2, 8), np.uint8)
    for k in range(6):
        iz[:, k] = (ticks >> (8 * k)) & 0xFF
    zl = zone_length(cfg, 0)
    zones, fhp = P.pack_mpdu(*P.build_packets([1, 2], [0, 0], [bytes(10), bytes(zl)]), zl)
    frames = build_frames(cfg, 0, [0, 1], zones[:2], fhp[:2], iz=iz)
    dec, outs = decode_all(cfg, frames)
    t0 = 1577808000.0
    assert outs[0].frames["insert_zone_time"].tolist() == [t0, t0 + 100.5]
    assert outs[0].packets.header["frame_time"][0] == t0


def test_wrong_frame_width():
    cfg = tm_cfg()
    dec = LinkDecoder(cfg)
    out = dec.push(FrameBatch.from_frames(np.zeros((3, 60), np.uint8)))
    assert (out.frames["status"] == REJECT_CODE["truncated"]).all()
    out = dec.push(FrameBatch.from_frames(np.zeros((2, 70), np.uint8)))
    assert (out.frames["status"] == REJECT_CODE["frame_length"]).all()
    assert dec.stats.to_dict()["rejects"] == {"truncated": 3, "frame_length": 2}
    assert dec.stats.to_dict()["frames"]["rejected"] == 5


def test_fecf_checked_when_quality_does_not_know():
    cfg = tm_cfg()
    rng = np.random.default_rng(10)
    frames, pk = vc_traffic(cfg, 0, rng, 5)
    frames = frames.copy()
    frames[1, 30] ^= 1
    dec, outs = decode_all(cfg, frames)   # from_frames: crc -1 (unknown)
    assert outs[0].frames["crc"].tolist()[:3] == [1, 0, 1]
    assert dec.stats.to_dict()["frames"]["crc_failed"] == 1


def test_stats_shape_and_string_keys():
    cfg = tm_cfg()
    dec, _ = decode_all(cfg, vc_traffic(cfg, 0, np.random.default_rng(11), 5)[0])
    assert isinstance(dec.stats, LinkStats)
    c = dec.stats.to_dict()
    assert set(c) == {"frames", "virtual_channels", "master_channel", "packets", "idle_packets", "rejects"}
    assert set(c["frames"]) == {"rejected", "crc_failed", "idle"}
    for vc in c["virtual_channels"].values():
        assert set(vc) == {"frames", "idle", "gaps", "frames_lost", "repeats"}
    assert set(c["master_channel"]) == {"gaps", "frames_lost", "repeats"}
    for p in c["packets"].values():
        assert set(p) == {"count", "bytes", "sequence_gaps", "sequence_missing", "sequence_repeats",
                          "dropped_incomplete"}
    assert all(isinstance(k, str) for k in c["packets"])


@pytest.mark.parametrize("kw", [dict(frame_type="X"), dict(frame_type="TM", spacecraft_id=2000),
                                dict(frame_type="TM", insert_zone=4), dict(frame_type="TM", fhec=True),
                                dict(frame_type="AOS", vc_data={1: "bogus"}),
                                dict(frame_type="AOS", vc_data={64: "vca"}),
                                dict(frame_type="AOS", frame_length=8),
                                dict(frame_type="AOS", insert_zone=2,
                                     insert_zone_time={"offset": 0, "length": 4})])
def test_config_errors(kw):
    with pytest.raises(ValueError):
        LinkDecoder(LinkConfig(**kw))


def test_tm_ocf_flag_must_match_the_mission():
    cfg = tm_cfg(ocf=False)
    rng = np.random.default_rng(12)
    frames, pk = vc_traffic(cfg, 0, rng, 10)
    bad = frames.copy()
    bad[2, 1] |= 1                     # OCF flag set on a link without OCF
    bad = append_fecf(bad[:, :-2])
    dec, outs = decode_all(cfg, bad)
    assert outs[0].frames["status"][2] == REJECT_CODE["frame_length"]
    assert dec.stats.to_dict()["virtual_channels"]["0"]["gaps"] == 1   # the refused frame is missing


@pytest.mark.parametrize("frame_type", ["TM", "AOS"])
def test_garbage_frames_never_crash_and_every_frame_is_counted(frame_type):
    rng = np.random.default_rng(13)
    if frame_type == "TM":
        cfg = tm_cfg(fecf=False, spacecraft_id=3)
        frames, _ = vc_traffic(cfg, 1, rng, 60)
    else:
        cfg = LinkConfig(frame_type="AOS", frame_length=48, spacecraft_id=3, ocf={1}, insert_zone=2,
                         vc_data={5: "vca"})
        frames, _ = vc_traffic(cfg, 1, rng, 60)
    frames = frames.copy()
    # keep the version and SCID of most frames so the garbage reaches the packet kernel
    noise = rng.integers(0, 256, frames.shape, dtype=np.uint8)
    hit = rng.random(frames.shape) < 0.05
    hit[:, :2] &= rng.random((len(frames), 1)) < 0.3
    frames[hit] = noise[hit]
    q = FrameBatch.from_frames(frames).quality
    q["integrity"][rng.random(len(frames)) < 0.05] = INTEGRITY_UNCORRECTABLE
    dec, outs = decode_all(cfg, frames, q, cuts=[7, 20])
    c = dec.stats.to_dict()
    delivered = sum(v["frames"] for v in c["virtual_channels"].values())
    refused = sum(v for k, v in c["rejects"].items() if k not in ("fhp_out_of_range", "packet_length"))
    assert delivered + refused == len(frames)
    rec = np.concatenate([o.frames for o in outs])
    assert (rec["status"] == 0).sum() == delivered
    pb = PacketBatch.concatenate([o.packets for o in outs])
    assert (np.diff(pb.offsets) == pb.header["length"]).all()
    assert all(v["count"] >= 0 for v in c["packets"].values())


def test_reject_batch_offsets_and_concatenate():
    from groundseg.link.records import RejectBatch
    cfg = tm_cfg()
    frames, _ = vc_traffic(cfg, 0, np.random.default_rng(14), 5)
    q = FrameBatch.from_frames(frames).quality
    q["integrity"][[0, 2]] = INTEGRITY_UNCORRECTABLE
    _, outs = decode_all(cfg, frames, q, cuts=[1])
    rj = RejectBatch.concatenate([o.rejects for o in outs])
    assert len(rj) == 2 and rj.offsets.tolist() == [0, 64, 128]
    assert rj.raw(1) == frames[2].tobytes() and (rj.records["vcid"] == -1).all()


# -- repeats, integrity, stage shape -------------------------------------------------------

@pytest.mark.parametrize("kind", ["TM", "AOS"])
def test_vc_counter_that_never_advances_is_repeats_and_packets_span_frames(kind):
    """Spacecraft that leave a VC's frame count fixed: every frame a repeat, no gap, and the
    packets spanning frames come out whole (a repeat is not a discontinuity)."""
    cfg = tm_cfg() if kind == "TM" else LinkConfig(frame_type="AOS", frame_length=60, spacecraft_id=9)
    rng = np.random.default_rng(20)
    frames, pk = vc_traffic(cfg, 1, rng, 40)
    stuck = build_frames(cfg, 1, np.full(len(frames), 5), *_zones_of(cfg, frames, 1),
                         mcfc=np.arange(len(frames)) if kind == "TM" else None)
    dec, outs = decode_all(cfg, stuck, cuts=[3, 11])
    assert packets_of(outs)[0] == pk
    vc = dec.stats.to_dict()["virtual_channels"]["1"]
    assert vc == {"frames": len(frames), "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": len(frames) - 1}
    assert not np.concatenate([o.frames["gap_before"] for o in outs]).any()
    assert sum(v["dropped_incomplete"] for v in dec.stats.to_dict()["packets"].values()) == 0


def _zones_of(cfg, frames, vcid):
    """(zones, fhp) back out of frames built by build_frames (the packet zone and the FHP)."""
    head = cfg.ft.decode_header(frames)
    start = int(cfg.ft.data_field_start(head, cfg, len(frames))[0]) + cfg.ft.mpdu_header_length
    zl = zone_length(cfg, vcid)
    fhp = cfg.ft.first_header_pointer(frames, head, cfg, np.arange(len(frames)), np.zeros(len(frames), bool))
    return frames[:, start:start + zl], fhp


def test_duplicated_frame_is_a_repeat_and_no_packet_is_corrupted():
    cfg = tm_cfg()
    rng = np.random.default_rng(21)
    frames, pk = vc_traffic(cfg, 0, rng, 60)
    dup = np.concatenate([frames[:5], frames[4:5], frames[5:]])
    dup[:, 2] = np.arange(len(dup)) % 256          # the master channel runs on
    dup = append_fecf(dup[:, :-2])
    dec, outs = decode_all(cfg, dup)
    got, _ = packets_of(outs)
    assert set(got) == set(pk)                       # nothing lost, nothing stitched wrongly
    c = dec.stats.to_dict()
    assert c["virtual_channels"]["0"]["repeats"] == 1 and c["virtual_channels"]["0"]["gaps"] == 0
    assert c["master_channel"] == {"gaps": 0, "frames_lost": 0, "repeats": 0}
    # packets that started in the duplicate come out twice: sequence repeats, not gaps
    assert sum(v["sequence_repeats"] for v in c["packets"].values()) == len(got) - len(pk)
    assert sum(v["sequence_gaps"] for v in c["packets"].values()) == 0


def test_integrity_decides_crc_after_the_header_checks():
    cfg = tm_cfg()
    frames, pk = vc_traffic(cfg, 0, np.random.default_rng(22), 10)
    bad = frames.copy()
    bad[3, 0] ^= 0x01                                 # wrong SCID
    q = FrameBatch.from_frames(bad).quality
    q["crc"] = 1
    q["integrity"][[2, 3]] = INTEGRITY_CRC_FAILED     # frame 2: header fine -> crc; 3: scid first
    q["crc"][[2, 3]] = 0
    dec, outs = decode_all(cfg, bad, q)
    st = outs[0].frames["status"]
    assert st[2] == REJECT_CODE["crc"] and st[3] == REJECT_CODE["scid"]
    c = dec.stats.to_dict()
    assert c["rejects"] == {"crc": 1, "scid": 1} and c["frames"]["crc_failed"] == 1
    # a crc-failed frame's header is kept in its record; it touches no counter
    assert outs[0].frames["vcid"][2] == 0 and c["virtual_channels"]["0"]["frames"] == len(frames) - 2


def test_flush_returns_a_link_output_and_reset_starts_a_new_stream():
    cfg = tm_cfg()
    frames, _ = vc_traffic(cfg, 0, np.random.default_rng(23), 20)
    dec = LinkDecoder(cfg)
    dec.push(FrameBatch.from_frames(frames[:4]))
    out = dec.flush()
    assert len(out.frames) == 0 and len(out.packets) == 0 and len(out.vca) == 0
    dropped = sum(v["dropped_incomplete"] for v in dec.stats.to_dict()["packets"].values())
    dec.reset()
    dec.push(FrameBatch.from_frames(frames[10:]))
    assert dec.stats.to_dict()["virtual_channels"]["0"]["gaps"] == 0
    assert dropped == sum(v["dropped_incomplete"] for v in dec.stats.to_dict()["packets"].values())
