"""Receiver profiles: the shipped ones load, mistakes are named."""
from __future__ import annotations

import pytest

from groundseg.sources.profile import PROFILE_DIR, ProfileError, load_profile, parse_profile


def test_shipped_profiles_load():
    names = {p.stem for p in PROFILE_DIR.glob("*.toml")}
    assert {"usb-cdc-raw", "kiss-tnc", "length-modem"} <= names
    for n in names:
        p = load_profile(n)
        assert p.framing in ("raw", "kiss", "length")
        kw = p.serial_kwargs()
        assert kw["baudrate"] == p.baud
    assert load_profile("kiss-tnc").usb.vid == 0x0403
    assert load_profile("length-modem").serial_kwargs()["rtscts"]


@pytest.mark.parametrize("text,words", [
    ('[receiver]\nframing = "hdlc"', ["receiver.framing", "raw, kiss, length"]),
    ('[serial]\nbaud = "fast"', ["serial.baud", "integer"]),
    ('[serial]\nparity = "weird"', ["serial.parity", "none, even"]),
    ('[serial]\nstopbits = 3', ["serial.stopbits"]),
    ('[serial]\nflow = "magic"', ["serial.flow", "rtscts"]),
    ('[serial]\nbaudrate = 9600', ["serial.baudrate", "unknown key", "baud"]),
    ('[radio]\nx = 1', ["radio", "unknown section"]),
    ('[receiver]\nframing = "raw"\n[kiss]\nport = 0', ["[kiss]"]),
    ('[receiver]\nframing = "length"\n[length]\nbytes = 3', ["length.bytes", "2, 4"]),
    ('[usb]\nvid = "zz"', ["usb.vid", "hexadecimal"]),
    ('[receiver\n', ["not valid TOML"]),
])
def test_profile_errors(text, words):
    with pytest.raises(ProfileError) as ei:
        parse_profile(text, "p.toml")
    msg = str(ei.value)
    assert msg.startswith("p.toml: ")
    for w in words:
        assert w in msg, msg


def test_missing_profile_names_the_shipped_ones():
    with pytest.raises(ProfileError, match="kiss-tnc"):
        load_profile("no-such-receiver")
