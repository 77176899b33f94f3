"""The frame-type objects (132.0-B TM, 732.0-B AOS): registry, identification, encoders."""
import numpy as np
import pytest

from groundseg.link import aos, frame_types, tm
from groundseg.link.decoder import LinkConfig


def test_registry_and_lookup():
    assert set(frame_types.FRAME_TYPES) == {"TM", "AOS", "none"}
    assert frame_types.get("NONE") is frame_types.NONE
    assert frame_types.get("aos") is frame_types.AOS and frame_types.get(frame_types.TM) is frame_types.TM
    assert frame_types.by_version(0) is frame_types.TM and frame_types.by_version(1) is frame_types.AOS
    assert frame_types.by_version(3) is None
    with pytest.raises(ValueError, match="TM, AOS, none"):
        frame_types.get("USLP")


def test_config_holds_the_object():
    cfg = LinkConfig(frame_type="aos", frame_length=100)
    assert cfg.frame_type == "AOS" and cfg.ft is frame_types.AOS and cfg.idle_vcid == 63
    assert LinkConfig(frame_type=frame_types.TM).frame_type == "TM"
    assert LinkConfig(frame_type="TM").idle_vcid is None


@pytest.mark.parametrize("ft,scid", [(frame_types.TM, 1000), (frame_types.AOS, 250)])
def test_master_channel_ids_ignore_vcid_and_flags(ft, scid):
    cfg = LinkConfig(frame_type=ft, frame_length=120, spacecraft_id=scid, ocf=True)
    frames = np.concatenate([ft.pack_header(cfg, v, 9, 0) for v in range(ft.n_vcids)])
    ids = ft.master_channel_ids(frames)
    assert (ids == ft.master_channel_id(scid)).all() and ft.versions_match(frames).all()
    other = frame_types.AOS if ft is frame_types.TM else frame_types.TM
    assert not other.versions_match(frames).any()


def test_pack_header_round_trips_through_decode_header():
    cfg = LinkConfig(frame_type="AOS", frame_length=80, spacecraft_id=42, fhec=True, insert_zone=3)
    h = cfg.ft.pack_header(cfg, [1, 2, 3], [5, 2 ** 24 + 1, 7], [0, 0x7FF, 12],
                           insert_zone=np.arange(9, dtype=np.uint8).reshape(3, 3))
    assert h.shape == (3, 6 + 2 + 3 + 2)
    head = cfg.ft.decode_header(h)
    assert head["vcid"].tolist() == [1, 2, 3] and head["vcfc"].tolist() == [5, 2 ** 24 + 1, 7]
    assert aos.fhec_decode(h.copy())[0].all()
    assert aos.decode_mpdu_header(h, 11).tolist() == [0, 0x7FF, 12]
    tcfg = LinkConfig(frame_type="TM", frame_length=80, spacecraft_id=700, ocf=True, tm_secondary_header=4)
    th = tcfg.ft.pack_header(tcfg, 5, [255, 256], [3, 0x7FE], mcfc=[10, 11])
    head = tcfg.ft.decode_header(th)
    assert th.shape == (2, 10) and head["ocf_flag"].all() and head["sec_hdr_flag"].all()
    assert head["vcfc"].tolist() == [255, 0] and head["mcfc"].tolist() == [10, 11]
    assert tm.decode_secondary_header(th)["length"].tolist() == [4, 4]


def test_build_frames_checks_the_length():
    cfg = LinkConfig(frame_type="TM", frame_length=64, spacecraft_id=1, fecf=True, ocf=True)
    zl = cfg.zone_length(0)
    assert zl == 64 - 6 - 4 - 2
    f = cfg.ft.build_frames(cfg, 0, [0, 1], np.zeros((2, zl), np.uint8), [0, 0], ocf_words=[1, 2])
    assert f.shape == (2, 64) and f[1, -6:-2].tolist() == [0, 0, 0, 2]
    with pytest.raises(ValueError):
        cfg.ft.build_frames(cfg, 0, [0], np.zeros((1, zl + 1), np.uint8), [0])


def test_unframed_type_delivers_every_frame_whole_on_vc0():
    """frame_type "none" (BY70-1): no header checks, no counters, VCA data on VC 0."""
    from groundseg.coding.frame_batch import INTEGRITY_UNCORRECTABLE, FrameBatch
    from groundseg.link.decoder import LinkDecoder
    cfg = LinkConfig(frame_type="none", frame_length=20, spacecraft_id=999)
    frames = np.random.default_rng(1).integers(0, 256, (6, 20), dtype=np.uint8)
    batch = FrameBatch.from_frames(frames)
    batch.quality["integrity"][2] = INTEGRITY_UNCORRECTABLE
    dec = LinkDecoder(cfg)
    out = dec.push(batch)
    st = dec.stats.to_dict()
    assert st["virtual_channels"] == {"0": {"frames": 5, "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}}
    assert st["rejects"] == {"rs_uncorrectable": 1}
    assert len(out.vca) == 5 and (out.vca.records["length"] == 20).all()
    kept = np.delete(frames, 2, axis=0)
    assert out.vca.data.reshape(5, 20).tobytes() == kept.tobytes()
    with pytest.raises(ValueError, match="no OCF"):
        LinkConfig(frame_type="none", frame_length=20, ocf=True)
