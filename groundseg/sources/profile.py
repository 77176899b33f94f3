"""Receiver profiles: what a receiver sends and how its serial line is set (TOML, validated).

A profile names the framing (``raw`` hard-bit CADU stream, ``kiss``, ``length``-prefixed
frames), the serial settings, and how to find the receiver again after an unplug (a
path or udev name, or its USB serial number / VID:PID). The profiles shipped with
groundseg are in ``hardware/profiles/``; ``hardware/README.md`` describes every key.
Errors name the file, the key and what is allowed (:class:`ProfileError`, exit 2).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from groundseg.errors import UsageError
from groundseg.sources.framing import FRAMINGS

#: hardware/profiles of the source tree (profiles may be named without a path)
PROFILE_DIR = Path(__file__).resolve().parents[2] / "hardware" / "profiles"

PARITIES = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
STOPBITS = (1, 1.5, 2)
BYTESIZES = (5, 6, 7, 8)
FLOWS = ("none", "rtscts", "xonxoff", "dsrdtr")


class ProfileError(UsageError):
    """A receiver profile that cannot be used; names file, key and what is allowed."""


@dataclass
class UsbMatch:
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    location: str | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.vid, self.pid, self.serial_number, self.location))

    def describe(self) -> str:
        parts = []
        if self.vid is not None or self.pid is not None:
            parts.append(f"{self.vid or 0:04x}:{self.pid or 0:04x}")
        if self.serial_number:
            parts.append(f"serial {self.serial_number}")
        if self.location:
            parts.append(f"at {self.location}")
        return "USB " + " ".join(parts)


@dataclass
class Profile:
    name: str = "raw"
    description: str = ""
    framing: str = "raw"
    port: str | None = None            # default port (a path, a udev name or a pyserial URL)
    baud: int = 115200
    bytesize: int = 8
    parity: str = "none"
    stopbits: float = 1
    flow: str = "none"
    read_timeout: float = 0.01         # s: one read waits at most this long for a first byte
    gather: float = 0.02               # s: one journal record gathers reads for at most this long
    read_max: int = 1 << 20            # bytes: and holds at most this many bytes
    line_rate: float = 0.0             # bit/s the receiver really delivers (0: baud for a UART, unknown otherwise)
    kiss_port: int = 0
    length_bytes: int = 2
    length_includes_header: bool = False
    min_length: int | None = None
    max_length: int | None = None
    usb: UsbMatch = field(default_factory=UsbMatch)
    reconnect_initial: float = 0.1
    reconnect_max: float = 2.0
    path: str = ""
    text: str = ""

    def serial_kwargs(self) -> dict:
        """Keyword arguments of ``serial.serial_for_url``."""
        return {"baudrate": self.baud, "bytesize": self.bytesize, "parity": PARITIES[self.parity],
                "stopbits": self.stopbits, "rtscts": self.flow == "rtscts", "xonxoff": self.flow == "xonxoff",
                "dsrdtr": self.flow == "dsrdtr", "timeout": self.read_timeout}

    def deframer_options(self) -> dict:
        return {"kiss_port": self.kiss_port, "length_bytes": self.length_bytes, "min_length": self.min_length,
                "max_length": self.max_length, "length_includes_header": self.length_includes_header}

    def summary(self) -> dict:
        return {"name": self.name, "framing": self.framing, "baud": self.baud, "parity": self.parity,
                "bytesize": self.bytesize, "stopbits": self.stopbits, "flow": self.flow, "path": self.path}


_SCHEMA = {
    "receiver": {"name": str, "description": str, "framing": str, "port": str},
    "serial": {"baud": int, "bytesize": int, "parity": str, "stopbits": (int, float), "flow": str,
               "read_timeout": (int, float), "gather": (int, float), "read_max": int, "line_rate": (int, float)},
    "kiss": {"port": int},
    "length": {"bytes": int, "includes_header": bool, "min": int, "max": int},
    "usb": {"vid": (int, str), "pid": (int, str), "serial_number": str, "location": str},
    "reconnect": {"initial": (int, float), "max": (int, float)},
}


def _type_name(t) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false"}[x] for x in ts)


def parse_profile(text: str, path: str = "<profile>") -> Profile:
    def fail(key: str, what: str):
        raise ProfileError(f"{path}: {key}: {what}")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    for section, value in doc.items():
        if section not in _SCHEMA:
            fail(section, f"unknown section; allowed: {', '.join(_SCHEMA)}")
        if not isinstance(value, dict):
            fail(section, "must be a table ([" + section + "])")
        for key, v in value.items():
            if key not in _SCHEMA[section]:
                fail(f"{section}.{key}", f"unknown key; allowed: {', '.join(_SCHEMA[section])}")
            t = _SCHEMA[section][key]
            ok = isinstance(v, t) and not (isinstance(v, bool) and t is not bool)
            if not ok:
                fail(f"{section}.{key}", f"must be {_type_name(t)}, not {v!r}")
    rcv, ser = doc.get("receiver", {}), doc.get("serial", {})
    kiss, length, usb, rec = doc.get("kiss", {}), doc.get("length", {}), doc.get("usb", {}), doc.get("reconnect", {})
    p = Profile(path=str(path), text=text)
    p.name = rcv.get("name", Path(path).stem)
    p.description = rcv.get("description", "")
    p.framing = rcv.get("framing", "raw")
    if p.framing not in FRAMINGS:
        fail("receiver.framing", f"{p.framing!r}; allowed: {', '.join(FRAMINGS)}")
    p.port = rcv.get("port")
    p.baud = ser.get("baud", p.baud)
    if p.baud <= 0:
        fail("serial.baud", f"must be positive, not {p.baud}")
    p.bytesize = ser.get("bytesize", 8)
    if p.bytesize not in BYTESIZES:
        fail("serial.bytesize", f"{p.bytesize}; allowed: 5, 6, 7, 8")
    p.parity = ser.get("parity", "none")
    if p.parity not in PARITIES:
        fail("serial.parity", f"{p.parity!r}; allowed: {', '.join(PARITIES)}")
    p.stopbits = ser.get("stopbits", 1)
    if p.stopbits not in STOPBITS:
        fail("serial.stopbits", f"{p.stopbits}; allowed: 1, 1.5, 2")
    p.flow = ser.get("flow", "none")
    if p.flow not in FLOWS:
        fail("serial.flow", f"{p.flow!r}; allowed: {', '.join(FLOWS)}")
    for key, lo, hi in (("read_timeout", 0.001, 5.0), ("gather", 0.0, 5.0)):
        v = float(ser.get(key, getattr(p, key)))
        if not lo <= v <= hi:
            fail(f"serial.{key}", f"{v} s; allowed: {lo} to {hi} s")
        setattr(p, key, v)
    p.read_max = ser.get("read_max", p.read_max)
    if not 256 <= p.read_max <= 64 << 20:
        fail("serial.read_max", f"{p.read_max}; allowed: 256 to {64 << 20} bytes")
    p.line_rate = float(ser.get("line_rate", 0.0))
    if p.line_rate < 0:
        fail("serial.line_rate", "must not be negative")
    p.kiss_port = kiss.get("port", 0)
    if not -1 <= p.kiss_port <= 15:
        fail("kiss.port", f"{p.kiss_port}; allowed: 0 to 15, or -1 for any port")
    p.length_bytes = length.get("bytes", 2)
    if p.length_bytes not in (2, 4):
        fail("length.bytes", f"{p.length_bytes}; allowed: 2, 4")
    p.length_includes_header = length.get("includes_header", False)
    p.min_length, p.max_length = length.get("min"), length.get("max")
    limit = (1 << (8 * p.length_bytes)) - 1
    for key in ("min", "max"):
        v = length.get(key)
        if v is not None and not 1 <= v <= limit:
            fail(f"length.{key}", f"{v}; allowed: 1 to {limit}")
    if p.min_length is not None and p.max_length is not None and p.min_length > p.max_length:
        fail("length.min", f"{p.min_length} is more than length.max {p.max_length}")
    if (kiss and p.framing != "kiss") or (length and p.framing != "length"):
        fail("receiver.framing", f"{p.framing!r}, but the profile has a [{'kiss' if kiss else 'length'}] section")
    m = UsbMatch()
    for key in ("vid", "pid"):
        v = usb.get(key)
        if isinstance(v, str):
            try:
                v = int(v, 16)
            except ValueError:
                fail(f"usb.{key}", f"{v!r} is not a hexadecimal number (e.g. \"0483\")")
        if v is not None and not 0 <= v <= 0xFFFF:
            fail(f"usb.{key}", f"{v}; allowed: 0 to 0xFFFF")
        setattr(m, key, v)
    m.serial_number, m.location = usb.get("serial_number"), usb.get("location")
    p.usb = m
    p.reconnect_initial = float(rec.get("initial", p.reconnect_initial))
    p.reconnect_max = float(rec.get("max", p.reconnect_max))
    if not 0 < p.reconnect_initial <= p.reconnect_max <= 60:
        fail("reconnect", "need 0 < initial <= max <= 60 (seconds)")
    return p


def load_profile(name_or_path: str | Path | None) -> Profile:
    """A profile file, or the name of one in hardware/profiles (``kiss-tnc``); None: raw defaults."""
    if name_or_path is None:
        return Profile(name="raw (default)", framing="raw")
    path = Path(name_or_path)
    if not path.exists() and not path.suffix:
        shipped = PROFILE_DIR / f"{path.name}.toml"
        if shipped.exists():
            path = shipped
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))) if PROFILE_DIR.is_dir() else "none"
        raise ProfileError(f"{name_or_path}: no such profile (shipped profiles: {known})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    return parse_profile(text, str(path))
