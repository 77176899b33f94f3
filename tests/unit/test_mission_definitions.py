"""groundseg.mission.definitions: the one placement rule equals ccsdspy's decoder; sizes are
bounded before anything is expanded; definitions built from field specs."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg.link import packets as pk
from groundseg.mission import definitions as defs


@st.composite
def field_lists(draw):
    """uint fields and arrays, some with a bit_offset (forward, backward or overlapping)."""
    n = draw(st.integers(1, 6))
    out, cursor = [], 48
    for i in range(n):
        bits = draw(st.integers(1, 24))
        shape = draw(st.sampled_from([None, None, (2,), (3,)]))
        count = 1 if shape is None else shape[0]
        offset = None
        if draw(st.booleans()):
            offset = max(48, cursor + draw(st.integers(-8, 16)))
        out.append(defs.FieldSpec(name=f"f{i}", data_type="uint", bit_length=bits, bit_offset=offset,
                                  byte_order="big", shape=shape))
        cursor = (offset if offset is not None else cursor) + bits * count
    return out


def _bits(packet: bytes, off: int, length: int) -> int:
    return (int.from_bytes(packet, "big") >> (len(packet) * 8 - off - length)) & ((1 << length) - 1)


@settings(deadline=None, max_examples=60)
@given(field_lists(), st.integers(0, 2 ** 32 - 1))
def test_layout_is_where_ccsdspy_reads(fields, seed):
    definition = defs.build_definition(fields)
    lay = defs.layout(definition)
    length = max(lay.length, 7)
    assert defs.fixed_length_bytes(definition) == lay.length
    rng = np.random.default_rng(seed)
    body = rng.integers(0, 256, (3, length), dtype=np.uint8)
    body[:, :6] = pk.pack_primary_headers(300, np.arange(3), length - 7)
    got = definition.load(io.BytesIO(body.tobytes()))
    for e in lay.elements:
        f = lay.fields[e.field]
        for row in range(3):
            have = got[f.name][row] if f.shape is None else got[f.name][row][e.index]
            assert int(have) == _bits(body[row].tobytes(), e.bit_offset, e.bit_length), (f, e)


def test_fields_of_reads_what_was_built():
    specs = [defs.FieldSpec("a", "uint", 8, None, "big", None),
             defs.FieldSpec("b", "int", 16, None, "little", (2, 3)),
             defs.FieldSpec("c", "uint", 8, None, "big", "expand")]
    back = defs.fields_of(defs.build_definition(specs))
    assert [(f.name, f.data_type, f.bit_length, f.bit_offset, f.byte_order, f.shape) for f in back] == \
        [("a", "uint", 8, None, "big", None), ("b", "int", 16, None, "little", (2, 3)),
         ("c", "uint", 8, None, "big", "expand")]
    assert defs.is_variable(defs.build_definition(specs))
    with pytest.raises(ValueError, match="variable"):
        defs.layout(defs.build_definition(specs))


def test_a_huge_array_is_refused_before_it_is_expanded():
    huge = defs.build_definition([defs.FieldSpec("x", "uint", 8, None, "big", (999_999_999,))])
    with pytest.raises(ValueError, match="at most 65542"):
        defs.layout(huge)                 # answers at once: nothing is listed per element
    assert defs.fixed_length_bytes(huge) == 6 + 999_999_999


@pytest.mark.parametrize("text,shape", [("4", (4,)), ("2, 3", (2, 3)), ("expand", "expand"), ("n", "n")])
def test_parse_shape(text, shape):
    assert defs.parse_shape(text) == shape


@pytest.mark.parametrize("text", ["0", "2, x", ""])
def test_parse_shape_refuses(text):
    with pytest.raises(ValueError):
        defs.parse_shape(text)
