"""ccsdspy packet definitions: built from CSV rows, and read back with one placement rule.

This is the one module that touches ccsdspy's private attributes (``_fields``,
``_name``, ``_bit_offset``, ...; ccsdspy 1.x/2.x have no public accessor). Everything
else (the field kernel of :mod:`groundseg.telemetry`, the simulator, the loader's
packet length) reads a definition through :func:`fields_of` and :func:`layout`.

Placement (ccsdspy's fixed-length decoder, whose field list starts with the 48-bit
primary header): a field without ``bit_offset`` starts where the previous field
ended (the first one at bit 48); a field with one starts there and the next free bit
becomes the later of the two ends. An array's elements follow one another, element
``i`` at ``bit_offset + i * bit_length`` when the array has an offset.
"""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass

from groundseg.mission.keys import MAX_PACKET_BYTES

PRIMARY_HEADER_BITS = 48
#: the most bits a fixed layout may span (a whole Space Packet of the largest size)
MAX_LAYOUT_BITS = MAX_PACKET_BYTES * 8


def import_ccsdspy():
    """ccsdspy, imported without its import-time INFO line (nothing below the CLI prints)."""
    if "ccsdspy" not in sys.modules:
        # ccsdspy sets its own logger to DEBUG while importing, so a level set
        # beforehand is overwritten: suppress INFO globally for the import only.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            import ccsdspy  # noqa: F401
        finally:
            logging.disable(previous)
    import ccsdspy
    logging.getLogger("ccsdspy").setLevel(logging.WARNING)
    return ccsdspy


@dataclass(frozen=True)
class FieldSpec:
    """One field of a definition as declared (an array counts once)."""
    name: str
    data_type: str                  # uint, int, float, str, fill
    bit_length: int                 # of one element
    bit_offset: int | None          # from the packet start (primary header included)
    byte_order: str                 # big, little, or a digit order such as 3412
    shape: tuple | str | None       # None: a scalar; a tuple of ints; a str: variable (ccsdspy)
    array_order: str = "C"

    @property
    def count(self) -> int:
        """Elements of a fixed field (1 for a scalar)."""
        if self.shape is None:
            return 1
        if isinstance(self.shape, str):
            raise ValueError(f"field {self.name!r} has a variable shape")
        return math.prod(self.shape)

    @property
    def variable(self) -> bool:
        return isinstance(self.shape, str)


@dataclass(frozen=True)
class Element:
    """One element of a fixed layout, where it is in the packet."""
    field: int                      # index into :attr:`Layout.fields`
    index: int                      # element index within the field (transmission order)
    bit_offset: int                 # from the packet start
    bit_length: int

    def label(self, fields: list[FieldSpec]) -> str:
        f = fields[self.field]
        return f.name if f.shape is None else f"{f.name}[{self.index}]"


@dataclass(frozen=True)
class Layout:
    fields: list[FieldSpec]
    elements: list[Element]
    end_bits: int                   # the first bit after the last field

    @property
    def length(self) -> int:
        """Whole-packet bytes the layout spans (primary header included)."""
        return (self.end_bits + 7) // 8


def _shape(f) -> tuple | str | None:
    shape = getattr(f, "_array_shape", None)
    if shape is None or isinstance(shape, (str, tuple)):
        return shape
    return (int(shape),)


def fields_of(definition) -> list[FieldSpec]:
    """The fields of a ccsdspy FixedLength / VariableLength, in definition order."""
    return [FieldSpec(name=f._name, data_type=f._data_type, bit_length=int(f._bit_length),
                      bit_offset=None if f._bit_offset is None else int(f._bit_offset),
                      byte_order=f._byte_order, shape=_shape(f),
                      array_order=getattr(f, "_array_order", "C") or "C")
            for f in definition._fields]


def converters_of(definition) -> dict:
    return dict(getattr(definition, "_converters", None) or {})


def is_variable(definition) -> bool:
    return any(f.variable for f in fields_of(definition))


def span_bits(fields: list[FieldSpec]) -> int:
    """The first bit after the last fixed field (the placement rule, whole fields at once);
    variable fields are skipped. Cheap whatever the array sizes."""
    counter = PRIMARY_HEADER_BITS
    for f in fields:
        if f.variable:
            continue
        size = f.bit_length * f.count
        if f.bit_offset is None:
            counter += size
        else:
            counter = max(counter, f.bit_offset + size)
    return counter


def layout(definition) -> Layout:
    """Every element of a fixed-length definition at its bit offset.

    ValueError for a variable-length field, or a layout longer than the largest Space
    Packet (checked before any element is listed)."""
    fields = fields_of(definition)
    if any(f.variable for f in fields):
        raise ValueError("variable array")
    end = span_bits(fields)
    if end > MAX_LAYOUT_BITS:
        raise ValueError(f"the fields span {(end + 7) // 8} bytes; a Space Packet holds at most "
                         f"{MAX_PACKET_BYTES}")
    counter = PRIMARY_HEADER_BITS
    elements = []
    for fi, f in enumerate(fields):
        for i in range(f.count):
            if f.bit_offset is None:
                off = counter
                counter += f.bit_length
            else:
                off = f.bit_offset + i * f.bit_length
                counter = max(counter, off + f.bit_length)
            elements.append(Element(fi, i, off, f.bit_length))
    return Layout(fields, elements, counter)


def fixed_length_bytes(definition) -> int:
    """Whole-packet bytes a ccsdspy FixedLength definition lays out (primary header included)."""
    return (span_bits(fields_of(definition)) + 7) // 8


def load_fixed(definition, fileobj) -> dict:
    """ccsdspy's fixed-length decoding (what ``FixedLength.load`` runs) without the
    sequence-count inspection ``load`` adds, primary header fields dropped. Falls back to
    ``load`` on a ccsdspy without these internals."""
    try:
        from ccsdspy import packet_types as pt
        arrays = pt._load(fileobj, definition._fields, definition._converters, "fixed_length",
                          include_primary_header=True)
        pt._delete_primary_header_fields(arrays)
        return arrays
    except (AttributeError, TypeError):      # another ccsdspy: its public API
        fileobj.seek(0)
        return definition.load(fileobj)


def parse_shape(text: str) -> tuple | str:
    """The inside of ``uint(...)``: ``"4"`` -> (4,), ``"2, 3"`` -> (2, 3), ``"expand"`` or a
    field name -> that string (a variable array). ValueError for a malformed shape."""
    text = text.strip()
    parts = [p.strip() for p in text.split(",")]
    if all(p.isdigit() for p in parts):
        shape = tuple(int(p) for p in parts)
        if any(d < 1 for d in shape):
            raise ValueError("array dimensions must be >= 1")
        return shape
    if len(parts) == 1 and parts[0]:
        return parts[0]
    raise ValueError("an array shape is whole numbers (uint(4), uint(2, 3)), expand or a field name")


def build_definition(specs: list[FieldSpec], variable: bool | None = None):
    """ccsdspy FixedLength/VariableLength from field specs, as ccsdspy's ``from_file``
    builds it plus ``byte_order`` (ccsdspy's CSV reader has no byte-order column)."""
    ccsdspy = import_ccsdspy()
    fields = []
    for f in specs:
        kw = dict(name=f.name, data_type=f.data_type, bit_length=f.bit_length, byte_order=f.byte_order)
        if f.bit_offset is not None:
            kw["bit_offset"] = f.bit_offset
        if f.shape is None:
            fields.append(ccsdspy.PacketField(**kw))
            continue
        shape = f.shape
        if isinstance(shape, tuple) and len(shape) == 1:
            shape = shape[0]
        fields.append(ccsdspy.PacketArray(array_shape=shape, **kw))
    if variable is None:
        variable = any(f.variable for f in specs)
    return (ccsdspy.VariableLength if variable else ccsdspy.FixedLength)(fields)
