"""groundseg: CCSDS downlink to per-mission HDF5 archive, at line rate."""
from __future__ import annotations

__version__ = "0.1.0"
