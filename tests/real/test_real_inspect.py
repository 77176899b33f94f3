"""inspect on the real captures: each named for what it is (frames, CADUs, packets, WAV, text)."""
import pytest

from groundseg.inspect import describe_failure, inspect_capture

pytestmark = pytest.mark.real

FRAMES = [  # (folder, file glob, frame length, frame type, SCID)
    ("change5-aos", "ce5_*_frames.u8", 220, "AOS", 108),
    ("queqiao", "queqiao2_frames.u8", 220, "AOS", 179),
    ("tianwen2-aos", "dwingeloo_kamo_*_frames.u8", 892, "AOS", 237),
    ("tianwen2-aos", "tw2-lowdr_*_frames.u8", 220, "AOS", 237),
    ("trisat-fsk", "trisat_frames.gr-satellites.bin", 223, "TM", 0),   # 4 frames only
]


def one(captures, folder, pattern):
    (path,) = (captures / folder).glob(pattern)
    return path


@pytest.mark.parametrize("folder,pattern,length,kind,scid", FRAMES)
def test_frames_captures(captures, folder, pattern, length, kind, scid):
    info = inspect_capture(one(captures, folder, pattern))
    assert info["contents"] == "transfer frames back to back (no marker)"
    assert info["frame_length"] == length and info["frame_type"].startswith(kind)
    assert max(info["spacecraft_ids"], key=info["spacecraft_ids"].get) == scid


def test_snpp_seven_cadus_two_vcs(captures):
    info = inspect_capture(captures / "snpp-cadu" / "snpp_7cadus_2vcids.dat")
    assert info["contents"] == "CADUs (hard bits)" and info["cadu_length"] == 1024
    assert info["virtual_channels"] == {6: 4, 16: 3} and info["spacecraft_ids"] == {157: 7}


@pytest.mark.parametrize("folder,name", [("by70-1-bpsk", "by701.wav"), ("trisat-fsk", "trisat.wav")])
def test_wav_recordings_are_not_cadus(captures, folder, name):
    info = inspect_capture(captures / folder / name)
    assert info["contents"].startswith("WAV") and "cadu_length" not in info
    assert info["wav"]["sample_rate"] == 48000
    assert "WAV audio file (48000 Hz" in describe_failure(captures / folder / name, 1020)


def test_hexdump_is_text_and_soft_symbols_are_not_cadus(captures):
    assert inspect_capture(captures / "by70-1-bpsk" / "by70-1.gr-satellites-hexdump.txt")["contents"].startswith("text")
    info = inspect_capture(captures / "by70-1-bpsk" / "by70-1_softsym_9600baud.f32")
    assert info["contents"].startswith("unrecognised") and "cadu_length" not in info


def test_single_packet_file_is_a_packet_stream(captures):
    info = inspect_capture(captures / "cygnss-packets" / "split_by_apid" / "apid00391.tlm")
    assert info["contents"].startswith("Space Packet stream") and info["apids"] == {391: 1}
