"""Archive API contracts added with the package split: the error hierarchy, reports as
objects, empty passes, names in any case, archive directories, paths refused untouched."""
from __future__ import annotations

import h5py
import pytest

from groundseg import telemetry
from groundseg.archive import hdf5
from groundseg.archive.errors import (
    ArchiveDamagedError, ArchiveError, ArchiveLockedError, ArchiveMismatchError,
)
from groundseg.archive.export import export_packets
from groundseg.archive.paths import check_output, resolve_archive
from groundseg.archive.reader import open_archive
from groundseg.archive.writer import ArchiveWriter
from groundseg.errors import GroundsegError, UnknownNameError, UsageError
from groundseg.mission import load_mission
from tests.integration.test_archive_support import mixed_batch, write_mission


@pytest.fixture
def mission(tmp_path):
    return load_mission(write_mission(tmp_path / "m"))


class Report:
    """A report object as the pipeline's Report dataclass presents itself."""

    def __init__(self, d):
        self.d = d

    def to_dict(self):
        return self.d


def write(path, mission, batch, report):
    with ArchiveWriter(path, mission) as w:
        w.begin_pass("test")
        if batch is not None:
            decoded, _ = telemetry.decode(batch, mission)
            w.append(decoded=decoded)
        return w.end_pass(report)


def test_error_hierarchy():
    for cls in (ArchiveError, ArchiveMismatchError, ArchiveLockedError, ArchiveDamagedError):
        assert issubclass(cls, GroundsegError)
    assert issubclass(ArchiveMismatchError, UsageError)  # CLI exit 2
    assert issubclass(UnknownNameError, UsageError) and issubclass(UnknownNameError, KeyError)
    assert str(UnknownNameError("no APID named 'x'")) == "no APID named 'x'"  # not quoted
    assert hdf5.ArchiveWriter is ArchiveWriter and hdf5.ArchiveError is ArchiveError


def test_report_object_and_empty_pass(tmp_path, mission):
    full = {"frames": {"total": 3, "clean": 3, "corrected": 0, "rejected": 0, "crc_failed": 0},
            "packets": {"10": {"count": 5}}}
    nothing = {"frames": {"total": 9, "clean": 0, "corrected": 0, "rejected": 0, "crc_failed": 0},
               "packets": {}}
    assert write(tmp_path, mission, mixed_batch(3), Report(full))["empty"] is False
    assert write(tmp_path, mission, None, Report(nothing))["empty"] is True
    assert write(tmp_path, mission, mixed_batch(2, seq0=100, rx0=3e9), {})["empty"] is False  # packets archived
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.passes["empty"].tolist() == [0, 1, 0]
        assert a.passes["frames_total"].tolist() == [3, 9, -1]  # the object's dict was archived
        assert a.pass_info(2)["report"] == nothing
    with pytest.raises(TypeError, match="to_dict"):
        with ArchiveWriter(tmp_path, mission) as w:
            w.begin_pass("x")
            w.end_pass(object())


def test_names_ignore_case(tmp_path, mission):
    write(tmp_path, mission, mixed_batch(4), {})
    with open_archive(tmp_path) as a:  # the directory: its one archive
        assert a.resolve_apid("HK") == a.resolve_apid("hk") == 10
        assert a.packets("Hk", fields=["TEMP"]).dtype.names[-1] == "temp"
        assert a.resolve_fields("hk", ["Volt", "temp"]) == ["volt", "temp"]
        with pytest.raises(UnknownNameError, match="fields: .*temp"):
            a.packets("hk", fields=["nosuch"])
        with pytest.raises(UnknownNameError, match="10 hk"):
            a.resolve_apid("nosuch")
        with pytest.raises(KeyError):  # as documented before UnknownNameError
            a.resolve_apid(1234, must_exist=True)
        assert a.resolve_apid(1234) == 1234  # the read API: an APID with no packets yet
        with pytest.raises(UnknownNameError, match="passes: 1"):
            a.pass_info(7)
    with pytest.raises(UnknownNameError, match="no APID 1234"):
        export_packets(tmp_path / "unit.h5", 1234, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


def test_paths(tmp_path, mission):
    with pytest.raises(ArchiveError, match="no archive"):
        resolve_archive(tmp_path)
    write(tmp_path, mission, mixed_batch(2), {})
    assert resolve_archive(tmp_path) == tmp_path / "unit.h5"
    (tmp_path / "b.h5").write_bytes(b"")
    with pytest.raises(UsageError, match="b.h5, unit.h5"):
        resolve_archive(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        check_output(tmp_path / "no" / "x.csv")
    assert not (tmp_path / "no").exists()
    assert check_output(tmp_path / "x.csv") == tmp_path / "x.csv"


def test_writer_refuses_non_archive_without_creating_anything(tmp_path, mission):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ArchiveError, match="not an HDF5"):
        ArchiveWriter(text, mission)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w", libver=("v110", "v110")) as f:
        f["x"] = 1
    with pytest.raises(ArchiveError, match="not a groundseg archive"):
        ArchiveWriter(other, mission)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "notes.txt", "other.h5"]


def test_writer_refuses_damaged_archive_untouched(tmp_path, mission):
    write(tmp_path, mission, mixed_batch(5), {})
    p = tmp_path / "unit.h5"
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    with pytest.raises(ArchiveDamagedError, match="truncated.*archive repair"):
        ArchiveWriter(tmp_path, mission)
    assert p.read_bytes() == data[:len(data) // 2]
    with pytest.raises(ArchiveDamagedError, match="truncated"):
        open_archive(p)
