"""groundseg: CCSDS downlink to per-mission HDF5 archive, at line rate.

The public API, imported lazily so `groundseg --version` and small tools start fast::

    import groundseg
    mission = groundseg.load_mission("fixtures/missions/demo.toml")
    with groundseg.ArchiveWriter("archive", mission) as writer:
        writer.begin_pass("demo.cadu")
        report = groundseg.Pipeline(mission, archive=writer).replay(["fixtures/demo/demo.cadu"])
        writer.end_pass(report)
    with groundseg.open_archive("archive/demo.h5") as arc:
        hk = arc.packets("hk")
"""
from __future__ import annotations

import importlib
import logging

__version__ = "0.1.0"

# ccsdspy announces itself at import on the root logger's INFO level; a library stays quiet
logging.getLogger("ccsdspy").setLevel(logging.WARNING)

_API = {
    "load_mission": "groundseg.mission",
    "Mission": "groundseg.mission",
    "MissionError": "groundseg.mission",
    "Pipeline": "groundseg.pipeline",
    "open_archive": "groundseg.archive.reader",
    "ArchiveWriter": "groundseg.archive.hdf5",
    "ArchiveError": "groundseg.archive.hdf5",
    "ArchiveMismatchError": "groundseg.archive.hdf5",
    "ArchiveDamagedError": "groundseg.archive.hdf5",
    "GroundsegError": "groundseg.errors",
    "UsageError": "groundseg.errors",
    "export_packets": "groundseg.archive.export",
    "simulate": "groundseg.spacecraft",
    "Impairments": "groundseg.spacecraft",
    "ChannelConfig": "groundseg.coding.channel",
    "ChannelDecoder": "groundseg.coding.channel",
    "ChannelEncoder": "groundseg.coding.channel",
    "FrameBatch": "groundseg.coding.frame_batch",
    "LinkConfig": "groundseg.link.decoder",
    "LinkDecoder": "groundseg.link.decoder",
    "PacketBatch": "groundseg.link.records",
    "inspect_capture": "groundseg.inspect",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'groundseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
