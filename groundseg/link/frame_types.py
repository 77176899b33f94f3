"""Transfer frame types as objects: TM (CCSDS 132.0-B-3) and AOS (CCSDS 732.0-B-4).

Everything that differs between frame types lives here, behind one interface, so the
rest of the link layer, the mission loader, the simulator and ``inspect`` never branch
on a frame type's name: VCID count and SCID width, counter moduli, the master-channel
counter, the idle rule, where the data field and the packet zone start and end, the OCF
rule, header decoding and checking, and the header encoders the simulator uses.

Adding a frame type (USLP, 732.1-B) is one more subclass registered in
:data:`FRAME_TYPES` plus its tests; docs/architecture.md ("Adding a frame type") has the
checklist.

Arrays in and out are per frame (``(n, L)`` uint8 frames, ``(n,)`` fields): a batch of
frames costs a handful of numpy operations whatever its size.
"""
from __future__ import annotations

import numpy as np

from groundseg.link import aos, tm
from groundseg.link.records import REJECT_CODE

#: The four OCF bytes (CCSDS 232.0-B CLCW) and the FECF, common to every frame type.
OCF_LENGTH = 4
FECF_LENGTH = 2


class FrameType:
    """The interface; one instance per frame type (stateless, shared)."""

    name: str = ""
    standard: str = ""
    version: int = -1             # transfer frame version number field
    version_bits: int = 2         # its width (USLP: 4)
    n_vcids: int = 0
    scid_bits: int = 0
    vc_counter_bits: int = 0      # the VC frame count as transmitted (before any extension)
    master_channel_counter: bool = False
    mc_modulus: int = 0           # the master-channel frame count's modulus (0: none)
    default_idle_vcid: int | None = None
    has_insert_zone: bool = False
    has_fhec: bool = False
    has_secondary_header: bool = False
    mpdu_header_length: int = 0   # bytes between the data field start and the packet zone
    #: header fields ``inspect`` lists for the first frames of a capture
    summary_fields: tuple[str, ...] = ("scid", "vcid", "vcfc")
    #: what a virtual channel the mission does not list carries
    default_vc_data: str = "packets"
    #: frames carry a header (version, SCID, VCID, counters) the link layer can check
    has_header: bool = True

    # -- vocabulary ------------------------------------------------------------------------
    @property
    def max_scid(self) -> int:
        return (1 << self.scid_bits) - 1

    @property
    def vc_modulus(self) -> int:
        return 1 << self.vc_counter_bits

    @property
    def mcid_bits(self) -> int:
        """Leading header bits that name the master channel: version number + SCID."""
        return self.version_bits + self.scid_bits

    def __repr__(self) -> str:
        return f"<frame type {self.name} ({self.standard})>"

    # -- identification (inspect, sync-less captures) ----------------------------------------
    def master_channel_ids(self, frames: np.ndarray) -> np.ndarray:
        """(n,) int64: the leading :attr:`mcid_bits` of each row (version << scid_bits | SCID),
        from the first 4 bytes only (rows shorter than that are zero-padded)."""
        f = np.asarray(frames)
        if f.ndim == 1:
            f = f[None, :]
        head = np.zeros((f.shape[0], 4), np.int64)
        k = min(4, f.shape[1])
        head[:, :k] = f[:, :k]
        word = (head[:, 0] << 24) | (head[:, 1] << 16) | (head[:, 2] << 8) | head[:, 3]
        return word >> (32 - self.mcid_bits)

    def master_channel_id(self, spacecraft_id: int) -> int:
        """The value :meth:`master_channel_ids` gives for this type's frames of ``spacecraft_id``."""
        return (self.version << self.scid_bits) | int(spacecraft_id)

    def versions_match(self, frames: np.ndarray) -> np.ndarray:
        """(n,) bool: rows whose version number field is this type's."""
        return (self.master_channel_ids(frames) >> self.scid_bits) == self.version

    # -- configuration -----------------------------------------------------------------------
    def validate(self, config) -> None:
        """Raise ValueError where a :class:`~groundseg.link.decoder.LinkConfig` does not fit
        this frame type (the generic checks are the config's own)."""
        if not 0 <= int(config.spacecraft_id) <= self.max_scid:
            raise ValueError(f"spacecraft_id {config.spacecraft_id} does not fit a {self.name} "
                             f"header (0..{self.max_scid})")
        if config.insert_zone < 0 or (config.insert_zone and not self.has_insert_zone):
            raise ValueError(f"insert_zone is a non-negative byte count and exists on "
                             f"{', '.join(t.name for t in FRAME_TYPES.values() if t.has_insert_zone)} only")
        if config.fhec and not self.has_fhec:
            raise ValueError(f"fhec exists on "
                             f"{', '.join(t.name for t in FRAME_TYPES.values() if t.has_fhec)} frames only")
        if config.tm_secondary_header and not self.has_secondary_header:
            raise ValueError(f"tm_secondary_header applies to "
                             f"{', '.join(t.name for t in FRAME_TYPES.values() if t.has_secondary_header)}"
                             " frames only")
        if config.idle_vcid is not None and not -1 <= config.idle_vcid < self.n_vcids:
            raise ValueError(f"idle_vcid must be -1 (none) or a VCID 0..{self.n_vcids - 1}")
        if config.insert_zone_time is not None and not self.has_insert_zone:
            raise ValueError(f"insert_zone_time needs an insert zone, which {self.name} frames do not have")

    def header_length(self, config) -> int:
        """Bytes before the data field for frames that carry every optional header."""
        raise NotImplementedError

    def insert_zone_offset(self, config) -> int:
        """First byte of the insert zone (types that have one)."""
        raise ValueError(f"{self.name} frames have no insert zone")

    def ocf_per_vc(self, link_ocf: bool, vc_ocf: bool | None) -> bool:
        """Whether a VC's frames carry an OCF, from the link's setting and the VC's own
        (None: not given)."""
        raise NotImplementedError

    def ocf_setting(self, link_ocf: bool, vc_ocf: dict[int, bool | None]):
        """The LinkConfig ``ocf`` value for a mission: a bool, or the set of VCIDs with an OCF."""
        return bool(link_ocf)

    def ocf_by_vcid(self, ocf) -> np.ndarray:
        """(n_vcids,) bool from a LinkConfig ``ocf`` value (a bool or a set of VCIDs)."""
        out = np.zeros(self.n_vcids, bool)
        if isinstance(ocf, (set, frozenset, list, tuple)):
            out[list(ocf)] = True
        else:
            out[:] = bool(ocf)
        return out

    def trailer_max(self, config) -> int:
        """The most bytes after the packet zone: OCF (if any VC has one) and FECF."""
        return (FECF_LENGTH if config.fecf else 0) + (OCF_LENGTH if config.ocf else 0)

    def min_frame_length(self, config) -> int:
        """The shortest frame with a data field of at least one byte."""
        return self.header_length(config) + self.mpdu_header_length + self.trailer_max(config) + 1

    def zone_length(self, config, vcid: int) -> int:
        """Bytes of packet zone (after any M_PDU header, before OCF and FECF) in a frame of
        ``vcid`` with every optional header present."""
        has_ocf = bool(self.ocf_by_vcid(config.ocf)[int(vcid)])
        return (config.frame_length - self.header_length(config) - self.mpdu_header_length
                - (FECF_LENGTH if config.fecf else 0) - OCF_LENGTH * has_ocf)

    # -- decoding ----------------------------------------------------------------------------
    def decode_header(self, frames: np.ndarray, config=None) -> dict[str, np.ndarray]:
        """Header fields per row; always ``version``, ``scid``, ``vcid``, ``vcfc`` (int64,
        extended where the frame type extends it), ``vcfc_modulus`` (int64) and ``mcfc``
        (int64, -1 where the type has no master-channel counter)."""
        raise NotImplementedError

    def check(self, frames: np.ndarray, config, status: np.ndarray) -> dict[str, np.ndarray]:
        """Decode the headers and mark in ``status`` (updated in place where still 0) each
        frame's first failing check: version, scid, frame_length, fhec. Returns the header
        fields (after FHEC correction where the type has one; ``frames`` is never changed)."""
        pending = status == 0
        head, length_ok, fhec_ok = self._decode_checked(frames, config)
        version_ok = head["version"] == self.version
        n = len(frames)
        scid_ok = head["scid"] == config.spacecraft_id if config.check_scid else np.ones(n, bool)
        for ok, reason in ((version_ok, "version"), (scid_ok, "scid"), (length_ok, "frame_length"),
                           (fhec_ok, "fhec")):
            bad = pending & ~ok
            status[bad] = REJECT_CODE[reason]
            pending &= ok
        return head

    def _decode_checked(self, frames, config):
        """(header fields, layout ok (n,) bool, FHEC ok (n,) bool)."""
        raise NotImplementedError

    def idle(self, frames: np.ndarray, head: dict, config) -> np.ndarray:
        """Idle frames (delivered: they carry counters and an OCF, no data)."""
        raise NotImplementedError

    def has_ocf(self, head: dict, config, ocf_by_vcid: np.ndarray) -> np.ndarray:
        """(n,) bool: frames that carry an OCF."""
        raise NotImplementedError

    def data_field_start(self, head: dict, config, n: int) -> np.ndarray:
        """(n,) int64 first byte of each frame's data field (an M_PDU or VCA data)."""
        raise NotImplementedError

    def first_header_pointer(self, frames: np.ndarray, head: dict, config, rows: np.ndarray,
                             idle: np.ndarray) -> np.ndarray:
        """(n,) int64 FHP of each frame in ``rows`` that carries an M_PDU (-1 elsewhere)."""
        raise NotImplementedError

    def frame_time_supported(self) -> bool:
        return self.has_insert_zone

    # -- appended for the mission loader and the simulator -------------------------------------
    #: the longest frame the standard allows (bytes)
    max_frame_length: int = 0

    def pack_headers(self, frames: np.ndarray, config, *, scid: int, vcid, vcfc, fhp, data,
                     idle, mcfc=None, ocf_flag=None, secondary=None, insert_zone=None) -> None:
        """Encoder (the simulator): write every header of ``frames`` in place.

        Per frame: ``vcid``, ``vcfc``, ``fhp`` (of the M_PDU, where ``data``), ``data`` (the
        frame carries packets), ``idle`` (an idle frame), ``mcfc`` (types with a master
        channel counter), ``ocf_flag``; ``secondary`` (n, k) bytes of a frame secondary
        header's data, ``insert_zone`` (n, insert_zone) bytes."""
        raise NotImplementedError

    # -- encoding (the simulator, tests) -------------------------------------------------------
    def pack_header(self, config, vcid, vcfc, fhp=None, *, mcfc=None, insert_zone=None,
                    secondary_header=None, n: int | None = None) -> np.ndarray:
        """Everything before the packet zone, for a batch: ``(n, k)`` uint8.

        ``vcid``, ``vcfc``, ``fhp``, ``mcfc`` are scalars or (n,) arrays (counters taken
        modulo the type's moduli). ``fhp`` None: no M_PDU (a VCA or idle data field; TM
        writes FHP 0x7FF). The OCF flag (TM) follows ``config.ocf``; the insert zone (AOS)
        and secondary header data (TM) are zeros unless given as ``(n, k)`` arrays.
        """
        raise NotImplementedError

    def build_frames(self, config, vcid, vcfc, zones: np.ndarray, fhp=None, *, mcfc=None,
                     ocf_words=None, insert_zone=None, secondary_header=None) -> np.ndarray:
        """Whole frames ``(m, frame_length)`` of one VC (or per-row ``vcid``) from packet zones
        ``(m, zone)``: headers (:meth:`pack_header`), the zones, the OCF where the VC has one
        (``ocf_words`` (m,) uint32 CLCWs, zeros if None) and the FECF if ``config.fecf``."""
        from groundseg.coding.crc import append_fecf
        zones = np.atleast_2d(np.asarray(zones, np.uint8))
        m = zones.shape[0]
        vc = np.broadcast_to(np.asarray(vcid, np.int64), (m,))
        parts = [self.pack_header(config, vc, vcfc, fhp, mcfc=mcfc, insert_zone=insert_zone,
                                  secondary_header=secondary_header, n=m), zones]
        has_ocf = self.ocf_by_vcid(config.ocf)[vc]
        if has_ocf.any():
            if not has_ocf.all():
                raise ValueError("build_frames: frames with and without an OCF in one call")
            words = np.zeros(m, np.uint32) if ocf_words is None else np.broadcast_to(
                np.asarray(ocf_words, np.uint32), (m,))
            parts.append(words.astype(">u4").view(np.uint8).reshape(m, OCF_LENGTH))
        frames = np.concatenate(parts, axis=1)
        width = config.frame_length - (FECF_LENGTH if config.fecf else 0)
        if frames.shape[1] != width:
            raise ValueError(f"zones of {zones.shape[1]} bytes make frames of "
                             f"{frames.shape[1] + config.frame_length - width} bytes, not {config.frame_length}")
        return append_fecf(frames) if config.fecf else frames


class TMFrameType(FrameType):
    name = "TM"
    standard = "CCSDS 132.0-B-3"
    version = tm.TM_VERSION
    n_vcids = 8
    scid_bits = 10
    vc_counter_bits = 8
    master_channel_counter = True
    mc_modulus = tm.MC_MODULUS
    default_idle_vcid = None      # idle frames are those with FHP 0x7FE, on whichever VC
    has_secondary_header = True
    summary_fields = ("scid", "vcid", "mcfc", "vcfc", "fhp")

    def validate(self, config) -> None:
        super().validate(config)
        if not 0 <= config.tm_secondary_header <= 64:
            raise ValueError("tm_secondary_header is 0 (none) or 1..64 bytes")
        if isinstance(config.ocf, (set, frozenset, list, tuple)):
            raise ValueError("TM ocf is a bool (the frame's OCF flag gives the layout)")

    def header_length(self, config) -> int:
        return tm.HEADER_LENGTH + config.tm_secondary_header

    def ocf_per_vc(self, link_ocf, vc_ocf):
        return bool(link_ocf)     # the OCF flag is per frame; the mission sets it link-wide

    def decode_header(self, frames, config=None):
        head = tm.decode_primary_header(frames)
        head["vcfc"] = head["vcfc"].astype(np.int64)
        head["mcfc"] = head["mcfc"].astype(np.int64)
        head["vcfc_modulus"] = np.full(len(head["vcfc"]), tm.VC_MODULUS, np.int64)
        return head

    def _decode_checked(self, frames, config):
        head = self.decode_header(frames, config)
        # a secondary header or OCF flag that disagrees with the mission changes the frame's
        # layout: refused as frame_length
        if config.tm_secondary_header:
            sec_len = tm.decode_secondary_header(frames)["length"]
            length_ok = head["sec_hdr_flag"] & (sec_len == config.tm_secondary_header)
        else:
            length_ok = ~head["sec_hdr_flag"]
        length_ok &= head["ocf_flag"] == bool(config.ocf)
        return head, length_ok, np.ones(len(frames), bool)

    def idle(self, frames, head, config):
        return head["fhp"] == tm.FHP_IDLE

    def has_ocf(self, head, config, ocf_by_vcid):
        return head["ocf_flag"].astype(bool)

    def data_field_start(self, head, config, n):
        return tm.HEADER_LENGTH + np.where(head["sec_hdr_flag"], config.tm_secondary_header, 0).astype(np.int64)

    def first_header_pointer(self, frames, head, config, rows, idle):
        fhp = np.full(len(frames), -1, np.int64)
        fhp[rows] = head["fhp"][rows]
        return fhp

    # -- appended for the mission loader and the simulator -------------------------------------
    max_frame_length = 2048

    def pack_headers(self, frames, config, *, scid, vcid, vcfc, fhp, data, idle, mcfc=None,
                     ocf_flag=None, secondary=None, insert_zone=None):
        n = frames.shape[0]
        vca = ~np.asarray(data, bool) & ~np.asarray(idle, bool)
        fhp = np.where(idle, tm.FHP_IDLE, np.where(vca, 0x7FF, fhp))
        frames[:, :tm.HEADER_LENGTH] = tm.pack_primary_header(
            scid, vcid, mcfc, vcfc, fhp, ocf_flag=ocf_flag, sec_hdr_flag=config.tm_secondary_header > 0,
            sync_flag=vca, n=n)
        if config.tm_secondary_header:
            k = config.tm_secondary_header
            frames[:, tm.HEADER_LENGTH:tm.HEADER_LENGTH + k] = tm.pack_secondary_header(secondary)
    def pack_header(self, config, vcid, vcfc, fhp=None, *, mcfc=None, insert_zone=None,
                    secondary_header=None, n=None):
        if insert_zone is not None:
            raise ValueError("TM frames have no insert zone")
        vcfc = np.asarray(vcfc, np.int64)
        h = tm.pack_primary_header(config.spacecraft_id, vcid, vcfc if mcfc is None else mcfc, vcfc,
                                   tm.FHP_NO_PACKET if fhp is None else fhp, ocf_flag=bool(config.ocf),
                                   sec_hdr_flag=config.tm_secondary_header > 0, n=n)
        if not config.tm_secondary_header:
            return h
        k = config.tm_secondary_header - 1
        data = np.zeros((len(h), k), np.uint8) if secondary_header is None else secondary_header
        return np.concatenate([h, tm.pack_secondary_header(np.broadcast_to(data, (len(h), k)))], axis=1)


class AOSFrameType(FrameType):
    name = "AOS"
    standard = "CCSDS 732.0-B-4"
    version = aos.AOS_VERSION
    n_vcids = 64
    scid_bits = 8
    vc_counter_bits = 24          # 28 with the VC count cycle (usage flag set)
    default_idle_vcid = aos.IDLE_VCID
    has_insert_zone = True
    has_fhec = True
    mpdu_header_length = aos.MPDU_HEADER_LENGTH

    def validate(self, config) -> None:
        super().validate(config)
        if isinstance(config.ocf, (set, frozenset, list, tuple)) and any(
                not 0 <= int(v) < self.n_vcids for v in config.ocf):
            raise ValueError(f"ocf VCIDs must be 0..{self.n_vcids - 1}")

    def header_length(self, config) -> int:
        return aos.HEADER_LENGTH + (aos.FHEC_LENGTH if config.fhec else 0) + config.insert_zone

    def insert_zone_offset(self, config) -> int:
        return aos.HEADER_LENGTH + (aos.FHEC_LENGTH if config.fhec else 0)

    def ocf_per_vc(self, link_ocf, vc_ocf):
        return bool(link_ocf) if vc_ocf is None else bool(vc_ocf)

    def ocf_setting(self, link_ocf, vc_ocf):
        if any(v is not None for v in vc_ocf.values()):
            return frozenset(v for v in range(self.n_vcids)
                             if self.ocf_per_vc(link_ocf, vc_ocf.get(v)))
        return bool(link_ocf)

    def decode_header(self, frames, config=None):
        head = aos.decode_primary_header(frames)
        head["mcfc"] = np.full(len(head["vcfc"]), -1, np.int64)
        return head

    def _decode_checked(self, frames, config):
        if config.fhec:
            # FHEC correction works on a copy: the frame as received stays in the archive
            h = frames[:, :aos.HEADER_LENGTH + aos.FHEC_LENGTH].copy()
            fhec_ok, _ = aos.fhec_decode(h, correct=config.fhec_correct)
        else:
            h = frames
            fhec_ok = np.ones(len(frames), bool)
        return self.decode_header(h, config), np.ones(len(frames), bool), fhec_ok

    def idle(self, frames, head, config):
        return head["vcid"].astype(np.int64) == (-2 if config.idle_vcid is None else config.idle_vcid)

    def has_ocf(self, head, config, ocf_by_vcid):
        return ocf_by_vcid[head["vcid"].astype(np.int64)]

    def data_field_start(self, head, config, n):
        return np.full(n, self.header_length(config), np.int64)

    def first_header_pointer(self, frames, head, config, rows, idle):
        fhp = np.full(len(frames), -1, np.int64)
        rows = rows[~idle[rows]]     # the idle VC carries no M_PDU
        if len(rows):
            fhp[rows] = aos.decode_mpdu_header(frames[rows], self.header_length(config))
        return fhp

    # -- appended for the mission loader and the simulator -------------------------------------
    max_frame_length = 65535

    def pack_headers(self, frames, config, *, scid, vcid, vcfc, fhp, data, idle, mcfc=None,
                     ocf_flag=None, secondary=None, insert_zone=None):
        n = frames.shape[0]
        frames[:, :aos.HEADER_LENGTH] = aos.pack_primary_header(scid, vcid, vcfc, n=n)
        at = aos.HEADER_LENGTH
        if config.fhec:
            frames[:, at:at + aos.FHEC_LENGTH] = aos.fhec_encode(frames[:, :aos.HEADER_LENGTH])
            at += aos.FHEC_LENGTH
        if config.insert_zone:
            frames[:, at:at + config.insert_zone] = insert_zone
            at += config.insert_zone
        mp = np.asarray(data, bool) & ~np.asarray(idle, bool)
        if mp.any():
            frames[mp, at:at + self.mpdu_header_length] = aos.pack_mpdu_header(np.asarray(fhp)[mp])

    def pack_header(self, config, vcid, vcfc, fhp=None, *, mcfc=None, insert_zone=None,
                    secondary_header=None, n=None):
        if secondary_header is not None or mcfc is not None:
            raise ValueError("AOS frames have no secondary header and no master-channel count")
        vcfc = np.asarray(vcfc, np.int64)
        usage = bool((vcfc >= aos.VC_MODULUS).any())
        h = aos.pack_primary_header(config.spacecraft_id, vcid, vcfc, vc_count_usage=usage, n=n)
        parts = [h]
        if config.fhec:
            parts.append(aos.fhec_encode(h))
        if config.insert_zone:
            iz = np.zeros((len(h), config.insert_zone), np.uint8) if insert_zone is None else insert_zone
            parts.append(np.broadcast_to(np.asarray(iz, np.uint8), (len(h), config.insert_zone)))
        if fhp is not None:
            parts.append(aos.pack_mpdu_header(np.broadcast_to(np.asarray(fhp, np.int64), (len(h),))))
        return np.concatenate(parts, axis=1)


class UnframedType(FrameType):
    """``frame_type = "none"``: the codeblocks' data are not transfer frames (BY70-1 carries a
    KISS byte stream). Nothing above the coding layer is parsed: each frame that passed RS
    and FECF is delivered whole on VC 0 and archived as VCA data; no header, no counters."""

    name = "none"
    standard = "none (codeblock data as received)"
    version = -1
    version_bits = 0
    n_vcids = 1
    scid_bits = 16                # the mission's spacecraft_id is not checked against frames
    vc_counter_bits = 0
    default_vc_data = "vca"
    max_frame_length = 65535
    has_header = False
    summary_fields = ()

    def validate(self, config) -> None:
        # no header: the mission's spacecraft_id cannot be checked against the frames
        if config.insert_zone or config.fhec or config.tm_secondary_header:
            raise ValueError('frame_type "none" has no headers: insert_zone, fhec and '
                             'tm_secondary_header must be unset')
        if config.ocf:
            raise ValueError('frame_type "none" has no OCF')

    def header_length(self, config) -> int:
        return 0

    def ocf_per_vc(self, link_ocf, vc_ocf):
        return False

    def decode_header(self, frames, config):
        n = len(frames)
        zero = np.zeros(n, np.int64)
        return {"version": zero, "scid": zero, "vcid": zero.astype(np.uint8), "vcfc": zero,
                "vcfc_modulus": np.ones(n, np.int64), "mcfc": np.full(n, -1, np.int64)}

    def check(self, frames, config, status):
        return self.decode_header(frames, config)

    def idle(self, frames, head, config):
        return np.zeros(len(frames), bool)

    def has_ocf(self, head, config, ocf_by_vcid):
        return np.zeros(len(head["vcid"]), bool)

    def data_field_start(self, head, config, n):
        return np.zeros(n, np.int64)

    def first_header_pointer(self, frames, head, config, rows, idle):
        return np.full(len(frames), -1, np.int64)

    def versions_match(self, frames):
        return np.zeros(len(np.atleast_2d(frames)), bool)

    def pack_headers(self, frames, config, **fields) -> None:
        """No headers to write: the simulator's frames are their data as they are."""


TM = TMFrameType()
AOS = AOSFrameType()
NONE = UnframedType()

#: Every frame type by name (upper case); :func:`get` looks names up ignoring case.
FRAME_TYPES: dict[str, FrameType] = {t.name: t for t in (TM, AOS, NONE)}
_BY_UPPER_NAME = {k.upper(): v for k, v in FRAME_TYPES.items()}


def get(name: str | FrameType) -> FrameType:
    """The frame type called ``name`` (any case); ValueError naming the known ones otherwise."""
    if isinstance(name, FrameType):
        return name
    ft = _BY_UPPER_NAME.get(str(name).upper())
    if ft is None:
        raise ValueError(f"frame_type must be one of {', '.join(FRAME_TYPES)}, not {name!r}")
    return ft


def by_version(version: int) -> FrameType | None:
    """The frame type whose version number field is ``version`` (None: no such type)."""
    for ft in FRAME_TYPES.values():
        if ft.version == version:
            return ft
    return None
