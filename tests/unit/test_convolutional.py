"""k=7 convolutional code and Viterbi decoder (CCSDS 131.0-B-4 section 3) against the slow reference.

Published vector: the ASM 1ACFFC1D convolutionally encoded from the zero state is
035D49C24FF2686B with the uninverted code (the correlator word of LRIT/HRIT and LRPT
receivers; its complement FCA2B63DB00D9794 is the other polarity), hence 56081C971AA73D3E
with G2 inverted (131.0-B-4 3.3).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from groundseg.coding import _viterbi_gen
from groundseg.coding import convolutional as cc
from groundseg.coding import viterbi_decoder as vd
from tests.reference import convolutional_reference as ref

# The 32-lane kernels run as plain Python under NUMBA_DISABLE_JIT=1 at about a second per
# batch of windows: that run keeps the encoder tests and one small decode.
jit_only = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="lane kernels too slow as plain Python (make test runs them)")

CODES = [(r, v) for r in cc.RATES for v in cc.VARIANTS if r == "1/2" or v != "nasa-dsn"]
RATE = {"1/2": 1 / 2, "2/3": 2 / 3, "3/4": 3 / 4, "5/6": 5 / 6, "7/8": 7 / 8}


def _noisy(symbols: np.ndarray, ebn0_db: float, rate: str, rng) -> np.ndarray:
    """BPSK over AWGN at Eb/N0 (Es/N0 = Eb/N0 * rate), float32, positive = 1."""
    esn0 = 10 ** (ebn0_db / 10) * RATE[rate]
    sigma = math.sqrt(1 / (2 * esn0))
    return (2.0 * symbols - 1 + rng.normal(0, sigma, symbols.size)).astype(np.float32)


def _bits(data: np.ndarray) -> list[int]:
    return [int(b) for b in np.unpackbits(data)]


# --- encoder ---------------------------------------------------------------------------------

def test_encoded_asm_is_the_published_pattern():
    asm = bytes.fromhex("1ACFFC1D")
    assert np.packbits(cc.encode(asm, variant="ccsds-noinv")).tobytes().hex() == "035d49c24ff2686b"
    inverted_g2 = 0x035D49C24FF2686B ^ 0x5555555555555555
    assert np.packbits(cc.encode(asm, variant="ccsds")).tobytes().hex() == f"{inverted_g2:016x}"
    assert f"{inverted_g2:016x}" == "56081c971aa73d3e"
    assert cc.encode(asm, variant="ccsds-noinv").tolist() == ref.encode(_bits(np.frombuffer(asm, np.uint8)),
                                                                       "1/2", "ccsds-noinv")


@pytest.mark.parametrize("rate,variant", CODES)
def test_encoder_matches_reference(rate, variant):
    data = np.random.default_rng(hash((rate, variant)) % 2**32).integers(0, 256, 40, dtype=np.uint8)
    assert cc.encode(data, rate, variant).tolist() == ref.encode(_bits(data), rate, variant)


def test_variants_are_swaps_and_inversions_of_one_code():
    data = np.random.default_rng(3).integers(0, 256, 64, dtype=np.uint8)
    base = cc.encode(data, "1/2", "ccsds-noinv").reshape(-1, 2)
    assert np.array_equal(cc.encode(data, "1/2", "ccsds").reshape(-1, 2), base ^ [0, 1])
    assert np.array_equal(cc.encode(data, "1/2", "nasa-dsn").reshape(-1, 2), base[:, ::-1] ^ [1, 0])


def test_punctured_order_is_table_3_2():
    data = np.random.default_rng(4).integers(0, 256, 7, dtype=np.uint8)      # 56 bits = 8 periods of 7/8
    base = cc.encode(data, "1/2", "ccsds-noinv").reshape(-1, 7, 2)
    c1, c2 = base[..., 0], base[..., 1]
    # C1(1) C2(1) C2(2) C2(3) C2(4) C1(5) C2(6) C1(7)
    want = np.stack([c1[:, 0], c2[:, 0], c2[:, 1], c2[:, 2], c2[:, 3], c1[:, 4], c2[:, 5], c1[:, 6]], axis=1)
    assert np.array_equal(cc.encode(data, "7/8", "ccsds"), want.reshape(-1))
    assert cc.encode(data, "2/3").size == 56 * 3 // 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        cc.encode(b"\0", "4/5")
    with pytest.raises(ValueError, match="variant"):
        cc.viterbi(np.zeros(16, np.int8), variant="voyager")
    with pytest.raises(ValueError, match="NASA-DSN"):
        cc.encode(b"\0", "3/4", "nasa-dsn")
    with pytest.raises(ValueError, match="whole number"):
        cc.viterbi(np.zeros(17, np.int8))
    with pytest.raises(ValueError, match="int8 or float32"):
        cc.viterbi(np.zeros(16, np.int32))


def test_small_decode_runs_without_jit():
    data = np.random.default_rng(20).integers(0, 256, 8, dtype=np.uint8)
    data[-1] = 0
    dec = vd.ViterbiDecoder(block_bits=32, ambiguity="bpsk")
    soft = cc.symbols_to_soft(cc.encode(data), 100)
    assert np.array_equal(np.concatenate([dec.push(soft[:50]), dec.push(soft[50:]), dec.flush()]), data)


def test_cost_scale():
    v = np.arange(-127, 128)
    want = 15 + np.sign(v) * np.maximum(np.round(np.abs(v) * 15 / 127), v != 0)
    assert [int(cc._cost(int(x))) for x in v] == want.astype(int).tolist()
    assert cc._cost(0) == 15 and cc._cost(-127) == 0 and cc._cost(127) == 30


def test_generated_acs_kernel_is_current():
    assert _viterbi_gen.TARGET.read_text() == _viterbi_gen.source()


# --- decoder: round trips and the reference -----------------------------------------------------

@jit_only
@pytest.mark.parametrize("rate,variant", CODES)
def test_clean_round_trip(rate, variant):
    data = np.random.default_rng(5).integers(0, 256, 1500, dtype=np.uint8)
    data[-1] = 0                                                     # zero tail
    soft = cc.symbols_to_soft(cc.encode(data, rate, variant), 90)
    assert np.array_equal(cc.viterbi(soft, rate, variant), data)
    assert np.array_equal(cc.viterbi(soft, rate, variant, terminated=False), data)


@jit_only
@pytest.mark.parametrize("rate,variant", [("1/2", "ccsds"), ("1/2", "nasa-dsn"), ("3/4", "ccsds"), ("7/8", "ccsds")])
def test_noisy_decode_agrees_with_reference(rate, variant):
    rng = np.random.default_rng(6)
    ebn0 = 3.0 if rate == "1/2" else 5.0
    ref_errors = kern_errors = 0
    for _ in range(6):
        data = rng.integers(0, 256, 24, dtype=np.uint8)
        data[-1] = 0
        sym = cc.encode(data, rate, variant)
        soft = cc.quantize(_noisy(sym, ebn0, rate, rng))
        want = np.packbits(ref.viterbi([int(v) for v in soft], data.size * 8, rate, variant))
        got = cc.viterbi(soft, rate, variant)
        ref_errors += int(np.unpackbits(want ^ data).sum())
        kern_errors += int(np.unpackbits(got ^ data).sum())
        if np.array_equal(want, data):
            assert np.array_equal(got, data)
    assert kern_errors <= ref_errors + 8


@jit_only
@pytest.mark.parametrize("rate,ebn0,max_ber", [("1/2", 3.0, 1e-3), ("1/2", 4.4, 2e-4), ("2/3", 5.0, 1e-3),
                                                ("3/4", 5.0, 2e-3), ("5/6", 6.0, 1e-3), ("7/8", 6.5, 2e-3)])
@jit_only
def test_bit_error_rate_near_expectation(rate, ebn0, max_ber):
    """r=1/2 soft decision: BER about 1e-5 at 4.4 dB; the punctured codes need 1-2.5 dB more."""
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 40000, dtype=np.uint8)
    sym = cc.encode(data, rate, "ccsds")
    got = cc.viterbi(_noisy(sym, ebn0, rate, rng), rate, "ccsds", terminated=False)
    ber = np.unpackbits(got ^ data).sum() / (8 * data.size)
    assert ber < max_ber
    uncoded = 0.5 * math.erfc(math.sqrt(10 ** (ebn0 / 10)))
    assert ber < uncoded / 5


# --- bad and extreme input -------------------------------------------------------------------

@jit_only
def test_erasures_all_zero_and_saturated():
    rng = np.random.default_rng(8)
    data = rng.integers(0, 256, 3000, dtype=np.uint8)
    data[-1] = 0
    soft = cc.symbols_to_soft(cc.encode(data), 127)
    erased = soft.copy()
    erased[rng.random(soft.size) < 0.15] = 0
    assert np.array_equal(cc.viterbi(erased), data)
    full = np.where(soft > 0, 127, -128).astype(np.int8)          # -128 is read as -127
    assert np.array_equal(cc.viterbi(full), data)
    zeros = cc.viterbi(np.zeros(soft.size, np.int8))
    assert zeros.size == data.size
    dec = vd.ViterbiDecoder()
    out = np.concatenate([dec.push(np.zeros(10003, np.int8)), dec.flush()])   # 5001 bits + 1 symbol
    assert out.size == 626 and dec.stats.symbols_dropped == 1 and dec.stats.pad_bits == 7


@jit_only
def test_float_input_nan_and_inf():
    rng = np.random.default_rng(9)
    data = rng.integers(0, 256, 2000, dtype=np.uint8)
    data[-1] = 0
    x = _noisy(cc.encode(data), 6.0, "1/2", rng) * np.float32(0.003)      # any scale
    x[rng.random(x.size) < 0.01] = np.nan
    x[::997] = np.inf * np.sign(x[::997])
    q = cc.quantize(x)
    assert q.dtype == np.int8 and q.min() >= -127
    assert (q[np.isnan(x)] == 0).all() and (q[np.isinf(x)] == 127 * np.sign(x[np.isinf(x)])).all()
    finite = np.isfinite(x)
    assert abs(np.abs(q[finite]).mean() - cc.QUANT_TARGET) < 3
    assert np.array_equal(cc.viterbi(x), data)
    assert (cc.quantize(np.full(4, np.nan, np.float32)) == 0).all()
    with pytest.raises(ValueError):
        cc.quantize(x, scale=0)


@jit_only
def test_bytes_input_carries_partial_floats():
    rng = np.random.default_rng(10)
    data = rng.integers(0, 256, 1000, dtype=np.uint8)
    x = (2.0 * cc.encode(data) - 1).astype(np.float32)
    raw = x.tobytes()
    dec = vd.ViterbiDecoder(dtype="float32", scale=60)
    out = [dec.push(raw[p:p + 1001]) for p in range(0, len(raw), 1001)]
    out.append(dec.flush())
    assert np.array_equal(np.concatenate(out), data)
    dec = vd.ViterbiDecoder(dtype="float32")
    dec.push(raw[:6])
    assert dec.stats.bytes_carried == 2


# --- streaming ---------------------------------------------------------------------------------

def _stream(dec: vd.ViterbiDecoder, soft: np.ndarray, cuts) -> np.ndarray:
    out = []
    prev = 0
    for c in sorted(cuts):
        out.append(dec.push(soft[prev:c]))
        prev = c
    out.append(dec.push(soft[prev:]))
    out.append(dec.flush())
    return np.concatenate(out)


@jit_only
def test_chunk_boundary_at_every_offset():
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, 60, dtype=np.uint8)
    soft = cc.quantize(_noisy(cc.encode(data), 2.5, "1/2", rng))
    whole = _stream(vd.ViterbiDecoder(block_bits=64), soft, [])
    assert whole.size == data.size
    for cut in range(soft.size + 1):
        dec = vd.ViterbiDecoder(block_bits=64)
        assert np.array_equal(_stream(dec, soft, [cut]), whole), cut


@jit_only
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 6000), max_size=12), rate=st.sampled_from(["1/2", "2/3", "7/8"]),
       ambiguity=st.sampled_from([None, "bpsk"]))
@jit_only
def test_chunking_never_changes_output(cuts, rate, ambiguity):
    rng = np.random.default_rng(12)
    data = rng.integers(0, 256, 500, dtype=np.uint8)
    sym = cc.encode(data, rate)
    soft = cc.quantize(_noisy(sym, 3.0, rate, rng))[:6000]
    soft = np.concatenate([soft[:1700], soft[1701:]])            # a slip: the alignment changes
    make = lambda: vd.ViterbiDecoder(rate, ambiguity=ambiguity, block_bits=256)
    whole = _stream(make(), soft, [])
    assert np.array_equal(_stream(make(), soft, cuts), whole)
    one_by_one = make()
    assert np.array_equal(_stream(one_by_one, soft, range(0, soft.size, 997)), whole)


@jit_only
def test_float_quantisation_blocks_do_not_depend_on_chunking():
    rng = np.random.default_rng(13)
    data = rng.integers(0, 256, 3000, dtype=np.uint8)
    x = _noisy(cc.encode(data), 3.0, "1/2", rng) * np.linspace(0.2, 3, 48000, dtype=np.float32)
    make = lambda: vd.ViterbiDecoder(quant_block=4096)
    whole = _stream(make(), x, [])
    assert np.array_equal(_stream(make(), x, [5, 4096, 4097, 30000]), whole)
    assert np.unpackbits(whole ^ data).sum() < 20


# --- ambiguities ----------------------------------------------------------------------------

@jit_only
@pytest.mark.parametrize("variant", ["ccsds", "ccsds-noinv", "nasa-dsn"])
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("inverted", [False, True])
def test_bpsk_alignment_and_polarity(variant, offset, inverted):
    rng = np.random.default_rng(14)
    data = rng.integers(0, 256, 2000, dtype=np.uint8)
    soft = cc.quantize(_noisy(cc.encode(data, "1/2", variant), 3.5, "1/2", rng))
    if inverted:
        soft = -soft
    soft = np.concatenate([rng.integers(-60, 60, offset).astype(np.int8), soft])
    dec = vd.ViterbiDecoder("1/2", variant, ambiguity="bpsk")
    out = _stream(dec, soft, [])
    want = data ^ 0xFF if inverted else data              # inversion complements the decoded bits
    body = out[:data.size - 2]                             # the extra symbol is skipped, not decoded
    assert np.unpackbits(body ^ want[:body.size]).mean() < 1e-3
    assert dec.stats.changes[0][2] == offset


@jit_only
@pytest.mark.parametrize("rate", ["2/3", "3/4", "7/8"])
def test_punctured_alignment_every_phase(rate):
    rng = np.random.default_rng(15)
    data = rng.integers(0, 256, 3000, dtype=np.uint8)
    soft = cc.symbols_to_soft(cc.encode(data, rate), 80)
    code = cc._code(rate, "ccsds")
    for offset in range(code.period_symbols):
        dec = vd.ViterbiDecoder(rate, ambiguity="bpsk")
        out = _stream(dec, np.concatenate([np.zeros(offset, np.int8), soft]), [])
        assert dec.stats.changes[0][2] == offset
        assert np.array_equal(out[1:2900], data[1:2900])


@jit_only
@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("iq_swap", [False, True])
def test_qpsk_rotations_and_iq_swap(rotation, iq_swap):
    rng = np.random.default_rng(16)
    data = rng.integers(0, 256, 2000, dtype=np.uint8)
    x = _noisy(cc.encode(data), 4.0, "1/2", rng).reshape(-1, 2)
    i, q = x[:, 0], x[:, 1]
    if iq_swap:
        i, q = q, i
    z = (i + 1j * q) * (1j ** rotation)
    received = np.stack([z.real, z.imag], axis=1).astype(np.float32).reshape(-1)
    dec = vd.ViterbiDecoder("1/2", "ccsds", ambiguity="qpsk")
    out = _stream(dec, received, [])
    err = min(np.unpackbits(out ^ data).mean(), np.unpackbits(out ^ data ^ 0xFF).mean())
    assert err < 1e-3
    assert dec.stats.switches <= 1


@jit_only
def test_alignment_changes_between_bursts_are_reported():
    rng = np.random.default_rng(17)
    a = rng.integers(0, 256, 3000, dtype=np.uint8)
    b = rng.integers(0, 256, 3000, dtype=np.uint8)
    sa = cc.quantize(_noisy(cc.encode(a), 4.0, "1/2", rng), 40)
    sb = cc.quantize(_noisy(cc.encode(b), 4.0, "1/2", rng), 40)
    noise = cc.quantize(rng.normal(0, 1, 5001).astype(np.float32), 40)   # odd: the next burst is misaligned
    dec = vd.ViterbiDecoder(ambiguity="bpsk", block_bits=512)
    out = _stream(dec, np.concatenate([sa, noise, sb]), [7777, 40000])
    offsets = [c[2] for c in dec.stats.changes]
    assert offsets == [0, 1] and dec.stats.switches == 1 and dec.stats.lock_losses >= 1
    bits = np.unpackbits(out)
    pos_b = dec.stats.changes[1][1]
    assert np.unpackbits(np.packbits(bits[:8 * a.size]) ^ a)[:-8].mean() < 1e-3
    text = "".join(map(str, bits[pos_b:]))
    assert "".join(map(str, np.unpackbits(b[1000:1100]))) in text     # b decoded after the switch


# --- link quality -------------------------------------------------------------------------------

@jit_only
@pytest.mark.parametrize("ebn0", [2.0, 4.0, 6.0])
def test_symbol_error_rate_and_esn0_estimate(ebn0):
    rng = np.random.default_rng(18)
    data = rng.integers(0, 256, 20000, dtype=np.uint8)
    x = _noisy(cc.encode(data), ebn0, "1/2", rng)
    dec = vd.ViterbiDecoder(scale=25)
    _stream(dec, x, [100000])
    esn0 = 10 ** ((ebn0 - 3.0103) / 10)
    raw_ser = 0.5 * math.erfc(math.sqrt(esn0))
    assert abs(dec.stats.ser - raw_ser) < 0.1 * raw_ser + 2e-4
    assert abs(dec.stats.esn0_db - (ebn0 - 3.0103)) < 0.5
    w = dec.last_windows
    assert w.dtype == vd.WINDOW_DTYPE and (w["bits"] > 0).all()


@jit_only
def test_clean_link_quality():
    data = np.random.default_rng(19).integers(0, 256, 2000, dtype=np.uint8)
    dec = vd.ViterbiDecoder()
    _stream(dec, cc.symbols_to_soft(cc.encode(data), 100), [])
    assert dec.stats.ser == 0 and dec.stats.esn0_db == float("inf")
    assert dec.stats.bits_out == data.size * 8 and dec.stats.windows == -(-data.size * 8 // dec.block_bits)


@jit_only
def test_flush_ends_the_stream_and_the_next_push_starts_another():
    rng = np.random.default_rng(21)
    a = rng.integers(0, 256, 700, dtype=np.uint8)
    b = rng.integers(0, 256, 900, dtype=np.uint8)
    dec = vd.ViterbiDecoder(ambiguity="bpsk")
    out_a = _stream(dec, cc.symbols_to_soft(cc.encode(a), 90), [])
    out_b = _stream(dec, np.concatenate([[5], cc.symbols_to_soft(cc.encode(b), 90)]).astype(np.int8), [3000])
    assert np.array_equal(out_a[:-1], a[:-1]) and np.array_equal(out_b[:-1], b[:-1])
    assert [c[2] for c in dec.stats.changes] == [0, 1] and dec.stats.bits_out == 8 * (a.size + b.size)


@jit_only
def test_padding_and_positions_are_per_stream():
    rng = np.random.default_rng(22)
    dec = vd.ViterbiDecoder()
    dec.push(cc.symbols_to_soft(cc.encode(rng.integers(0, 256, 101, dtype=np.uint8)))[:1602])   # 801 bits
    dec.flush()
    assert dec.stats.pad_bits == 7
    data = rng.integers(0, 256, 100, dtype=np.uint8)
    out = np.concatenate([dec.push(cc.symbols_to_soft(cc.encode(data))), dec.flush()])
    assert np.array_equal(out[:-1], data[:-1]) and dec.stats.pad_bits == 7
    assert dec.last_windows["bit_position"][0] == 0
