"""inspect: what a capture holds without a mission file, on bytes built in memory (no files)."""
import io
import wave

import numpy as np
import pytest

from groundseg.coding import sync
from groundseg.coding.channel import ChannelConfig, ChannelEncoder
from groundseg.coding.crc import append_fecf
from groundseg.inspect import describe_failure, inspect_capture
from groundseg.link import packets as P
from groundseg.link.decoder import LinkConfig


def frames_capture(cfg: LinkConfig, vcids, seed=0) -> np.ndarray:
    """Frames back to back, one VC per row as given, counters running per VC and packet data."""
    rng = np.random.default_rng(seed)
    vcids = np.asarray(vcids)
    rows = []
    for i, v in enumerate(vcids):
        n_before = int((vcids[:i] == v).sum())
        zone = rng.integers(0, 256, (1, cfg.zone_length(int(v))), dtype=np.uint8)
        rows.append(cfg.ft.build_frames(cfg, int(v), [n_before + 7], zone, [P.FHP_NO_PACKET],
                                        mcfc=[i] if cfg.ft.master_channel_counter else None))
    return np.concatenate(rows).ravel()


@pytest.mark.parametrize("kind", ["TM", "AOS"])
def test_frames_of_several_vcs_whatever_the_first_frame_vc(kind):
    cfg = (LinkConfig(frame_type="TM", frame_length=1115, spacecraft_id=300, ocf=True, fecf=True) if kind == "TM"
           else LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=157, insert_zone=8))
    rng = np.random.default_rng(1)
    vcids = np.where(rng.random(60) < 0.5, 1, rng.integers(2, 6, 60))
    vcids[0] = 7                       # the first frame is on a VC seen once
    info = inspect_capture(frames_capture(cfg, vcids))
    assert info["contents"] == "transfer frames back to back (no marker)"
    assert info["frame_length"] == cfg.frame_length and info["frame_type"].startswith(kind)
    assert info["spacecraft_ids"] == {cfg.spacecraft_id: 60}
    assert info["virtual_channels"] == dict(sorted((int(v), int((vcids == v).sum())) for v in np.unique(vcids)))


@pytest.mark.parametrize("n", [2, 3])
def test_a_few_frames_are_recognised(n):
    cfg = LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=237, insert_zone=8)
    info = inspect_capture(frames_capture(cfg, [1, 6, 1][:n], seed=n))
    assert info["contents"] == "transfer frames back to back (no marker)"
    assert info["frame_length"] == 892 and info["spacecraft_ids"] == {237: n}
    line = describe_failure(frames_capture(cfg, [1, 6, 1][:n], seed=n))
    assert "892 bytes" in line and "level \"frames\"" in line


def cadus(n_frames, interleave=4, frame_length=892, seed=2):
    cfg = ChannelConfig(frame_length=frame_length, interleave=interleave, fecf=False)
    link = LinkConfig(frame_type="AOS", frame_length=frame_length, spacecraft_id=157)
    vc = np.arange(n_frames) % 2 + 16
    frames = np.concatenate([link.ft.build_frames(link, int(v), [i],
                                                  np.full((1, link.zone_length(int(v))), i, np.uint8), [0])
                             for i, v in enumerate(vc)])
    return ChannelEncoder(cfg).encode(frames)


@pytest.mark.parametrize("n", [2, 3, 20])
def test_cadus_even_a_few(n):
    info = inspect_capture(cadus(n))
    assert info["contents"] == "CADUs (hard bits)" and info["cadu_length"] == 1024
    assert info["coding"]["interleave"] == 4 and info["coding"]["frame_length"] == 892
    assert info["spacecraft_ids"] == {157: n} and set(info["virtual_channels"]) == {16, 17}


def test_describe_failure_names_the_spacing_against_the_expected_one():
    line = describe_failure(cadus(5), expected_codeblock_length=1275)
    assert "8192 bits apart" in line and "10232 bits apart" in line and "expects" in line
    assert "as the mission expects" in describe_failure(cadus(5), expected_codeblock_length=1020)


def test_two_chance_markers_are_not_cadus():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 100_000, dtype=np.uint8)
    assert sync.find_asm(data, max_bit_errors=2)[0].size == 0
    for at in (1000, 21_003):                     # two planted markers, nothing RS-valid between
        data[at:at + 4] = [0x1A, 0xCF, 0xFC, 0x1D]
    info = inspect_capture(data)
    assert info["contents"].startswith("unrecognised") and "chance matches" in info["contents"]
    assert info["sync_marker"]["found"] == 2
    line = describe_failure(data, expected_codeblock_length=1020)
    assert line.startswith("nothing recognised") and "8192 bits apart" in line


def test_no_marker_anywhere():
    data = np.random.default_rng(4).integers(0, 256, 20_000, dtype=np.uint8)
    assert "no sync marker at any bit offset" in describe_failure(data)


def test_wav_is_named_with_its_format():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.random.default_rng(5).integers(-2000, 2000, 40_000, dtype=np.int16).tobytes())
    info = inspect_capture(buf.getvalue())
    assert info["contents"].startswith("WAV") and "sync_marker" not in info
    assert info["wav"] == {"sample_rate": 48000, "channels": 2, "bits_per_sample": 16, "format": "PCM",
                           "data_bytes": 80_000}
    line = describe_failure(buf.getvalue())
    assert "WAV" in line and "48000 Hz" in line and "2 channel" in line and "16-bit" in line


def test_text_and_empty_and_constant():
    assert inspect_capture(b"time,value\n1,2\n" * 100)["contents"].startswith("text")
    assert "text file" in describe_failure("hello\n".encode() * 1000)
    assert inspect_capture(b"")["contents"] == "empty"
    assert "every byte is 0x00" in inspect_capture(bytes(5000))["contents"]


def test_packet_stream_even_of_one_packet():
    stream, _ = P.build_packets(391, 0, [bytes(range(200))])
    info = inspect_capture(stream)
    assert info["contents"].startswith("Space Packet stream") and info["apids"] == {391: 1}
    stream, _ = P.build_packets([5, 6, 5], [0, 0, 1], [b"ab", b"cd", b"ef"])
    assert inspect_capture(stream)["apids"] == {5: 2, 6: 1}


def test_tm_frames_with_fecf_and_ocf_flag_found_by_version_and_scid():
    cfg = LinkConfig(frame_type="TM", frame_length=223, spacecraft_id=0, fecf=False)
    data = frames_capture(cfg, [4, 4, 4, 4])
    info = inspect_capture(data)
    assert info["frame_length"] == 223 and info["virtual_channels"] == {4: 4}
    assert info["first_headers"][0]["mcfc"] == 0 and info["first_headers"][3]["mcfc"] == 3
    # FECF appended: still the same period
    f = append_fecf(data.reshape(4, 223)[:, :-2]).ravel()
    assert inspect_capture(f)["frame_length"] == 223
