"""Mission files: every fixture loads; every kind of mistake names the file, the key and what is allowed - the tests that read or write files (tests/unit opens none)."""
from __future__ import annotations

import pytest
from groundseg.mission import (LinkSettings, MissionError, load_mission, loads_mission)
from tests.unit.test_mission import (BASE, FRAMES_ONLY, HK_CSV, MISSIONS, _aos_izt, error, write)  # noqa: F401


def test_base_mission_values(tmp_path):
    m = load_mission(write(tmp_path, BASE))
    link = m.link
    assert isinstance(link, LinkSettings)
    assert (link.frame_type, link.frame_length, link.interleave, link.virtual_fill) == ("TM", 1115, 5, 0)
    assert link.asm == "1ACFFC1D" and link.asm_bits == 32 and link.asm_value == 0x1ACFFC1D
    assert link.randomized and link.dual_basis and link.derandomize == "before_rs"
    assert link.idle_vcid is None and link.asm_max_bit_errors == 4 and link.bit_rate == 0
    assert link.codeblock_length == 1115 + 5 * 32
    assert m.virtual_channels[0].data == "packets"
    hk = m.apids[100]
    assert hk.packet_length == 6 + 4 + 2 + 2
    assert hk.fields["volts"].units == "V" and hk.fields["volts"].calibration == "poly:0.0,0.001"
    assert hk.time_code.kind == "cuc" and (hk.time_code.coarse, hk.time_code.fine) == (4, 2)
    assert m.time_epoch == "1958-01-01T00:00:00Z"
    assert m.apid_by_name("hk") == 100 and m.apid_by_name("100") == 100 and m.apid_by_name(7) == 7
    assert m.apid_by_name("HK") == 100 and m.apid_name(5) == "apid5"
    with pytest.raises(ValueError, match="no APID named 'hkk'.*did you mean 'hk'"):
        m.apid_by_name("hkk")

def test_aos_defaults(tmp_path):
    text = BASE.replace('frame_type = "TM"', 'frame_type = "AOS"').replace("frame_length = 1115", "frame_length = 892") \
        .replace("interleave = 5", "interleave = 4")
    m = load_mission(write(tmp_path, text))
    assert m.link.idle_vcid == 63 and m.link.virtual_fill == 0

def test_packets_level_needs_no_link(tmp_path):
    m = load_mission(write(tmp_path, '[mission]\nname = "pk"\n[[apids]]\nid = 5\nname = "x"\n', csv=None))
    assert m.link is None and m.level == "packets" and m.spacecraft_id is None

@pytest.mark.parametrize("old,new,key,allowed", [
    # unknown keys, with the closest suggestion
    ("interleave = 5", "interleave = 5\ninterleaf = 5", "[link] interleaf", "did you mean 'interleave'"),
    ("[mission]", "[mision]\nname='x'\n[mission]", "mision", "did you mean 'mission'"),
    ('name = "realtime"', 'name = "realtime"\ndat = "vca"', "[[virtual_channels]] #1 dat", "did you mean 'data'"),
    ('name = "hk"', 'name = "hk"\ndefinitoin = "hk.csv"', "[[apids]] #1 definitoin", "did you mean 'definition'"),
    # wrong types
    ("frame_length = 1115", 'frame_length = "1115"', '[link] frame_length = "1115"', "must be an integer, not a string"),
    ("fecf = true", "fecf = 1", "[link] fecf = 1", "must be a boolean"),
    ("spacecraft_id = 42", "spacecraft_id = 4.2", "[mission] spacecraft_id = 4.2", "must be an integer"),
    # out of range / not in the vocabulary
    ("interleave = 5", "interleave = 6", "[link] interleave = 6", "must be one of 1, 2, 3, 4, 5, 8"),
    ('frame_type = "TM"', 'frame_type = "tm2"', '[link] frame_type = "tm2"', 'must be one of "TM", "AOS"'),
    ('reed_solomon = "255,223"', 'reed_solomon = "255/223"', "[link] reed_solomon", '"none", "255,223", "255,239"'),
    ("spacecraft_id = 42", "spacecraft_id = 1024", "[mission] spacecraft_id = 1024", "10-bit SCID: must be in 0..1023"),
    ("id = 100", "id = 2047", "[[apids]] #1 id = 2047", "must be in 0..2046"),
    ("id = 0", "id = 8", "[[virtual_channels]] #1 id = 8", "must be in 0..7"),
    ("fecf = true", "fecf = true\nbit_rate = -5", "[link] bit_rate = -5", ">= 0"),
    ("fecf = true", 'fecf = true\nasm = "1ACFFC1"', '[link] asm = "1ACFFC1"', "hex digits"),
    ('time = "cuc:4,2"', 'time = "cuc:9,2"', '[[apids]] id = 100: time = "cuc:9,2"', "coarse octets must be 1..7"),
    ('time = "cuc:4,2"', 'time = "gps"', '[[apids]] id = 100: time = "gps"', "cuc:C,F"),
    # impossible combinations
    ("frame_length = 1115", "frame_length = 1116", "[link] frame_length = 1116", "multiple of 5"),
    ("frame_length = 1115", "frame_length = 1120", "[link] frame_length = 1120", "no larger than 1115"),
    ("fecf = true", "fecf = true\ninsert_zone = 4", "[link] insert_zone = 4", "only in AOS frames"),
    ("fecf = true", "fecf = true\nfhec = true", "[link] fhec = true", "only in AOS frames"),
    ("fecf = true", 'fecf = true\nlevel = "soft"', '[link] symbols = "hard"', "soft-int8"),
    ("fecf = true", "fecf = true\nidle_vcid = 0", '[[virtual_channels]] id = 0: data = "packets"', "idle VC"),
    # names
    ('name = "test-sat"', 'name = "Test Sat"', '[mission] name = "Test Sat"', "lower-case letters, digits"),
    ('name = "hk"', 'name = "123"', '[[apids]] id = 100: name = "123"', "not only digits"),
])
def test_mistakes_name_file_key_and_allowed(tmp_path, old, new, key, allowed):
    assert old in BASE
    e = error(tmp_path, BASE.replace(old, new, 1))
    assert key in str(e), str(e)
    assert allowed in str(e), str(e)

def test_message_format_matches_the_contract(tmp_path):
    e = error(tmp_path, BASE.replace("interleave = 5", "interleave = 6"))
    assert str(e) == f"{tmp_path / 'mission.toml'}: [link] interleave = 6: must be one of 1, 2, 3, 4, 5, 8"
    assert e.key == "[link] interleave = 6"

def test_duplicate_ids_and_names(tmp_path):
    dup_vc = BASE + '\n[[virtual_channels]]\nid = 0\nname = "again"\n'
    assert "duplicate virtual channel id" in str(error(tmp_path, dup_vc))
    dup_apid = BASE + '\n[[apids]]\nid = 100\nname = "other"\n'
    assert "[[apids]] id = 100: duplicate APID" in str(error(tmp_path, dup_apid))
    dup_name = BASE + '\n[[apids]]\nid = 101\nname = "hk"\n'
    assert 'name = "hk": duplicate APID name' in str(error(tmp_path, dup_name))

def test_missing_csv_and_missing_keys(tmp_path):
    e = error(tmp_path, BASE.replace('"hk.csv"', '"nothere.csv"'))
    assert 'definition = "nothere.csv"' in str(e) and "file not found" in str(e)
    e = error(tmp_path, BASE.replace("frame_length = 1115\n", ""))
    assert "[link] frame_length: missing (required)" in str(e)
    e = error(tmp_path, BASE.replace('name = "test-sat"\n', ""))
    assert "[mission] name: missing" in str(e)
    e = error(tmp_path, BASE.replace("spacecraft_id = 42\n", ""))
    assert "[mission] spacecraft_id: missing" in str(e)

@pytest.mark.parametrize("csv,fragment", [
    ("name,data_type\nx,uint\n", "CSV columns bit_length missing"),
    ("name,data_type,bit_length,unit\nx,uint,8,V\n", "unknown CSV column 'unit' (did you mean 'units'?)"),
    ("name,data_type,bit_length\nx,unsigned,8\n", "data_type 'unsigned'"),
    ("name,data_type,bit_length\nx,uint,65\n", "integers are 1..64 bits"),
    ("name,data_type,bit_length\nx,float,24\n", "floats are 16, 32 or 64 bits"),
    ("name,data_type,bit_length\nx,uint,8\nx,uint,8\n", "duplicate field name 'x'"),
    ("name,data_type,bit_length,calibration\nx,uint,8,lin:1\n", "poly:a0,a1"),
    ("name,data_type,bit_length,byte_order\nx,uint,16,middle\n", "byte_order 'middle'"),
    ("name,data_type,bit_length\n", "no fields"),
])
def test_csv_mistakes(tmp_path, csv, fragment):
    e = error(tmp_path, BASE, csv)
    assert 'definition = "hk.csv"' in str(e) and fragment in str(e), str(e)

def test_time_code_must_fit_the_packet(tmp_path):
    e = error(tmp_path, BASE.replace('time = "cuc:4,2"', 'time = "cds:24,4"'))
    assert "does not fit the 14-byte packet" in str(e)

def test_packet_length_override(tmp_path):
    m = load_mission(write(tmp_path, BASE.replace('time = "cuc:4,2"', 'time = "cuc:4,2"\npacket_length = 20')))
    assert m.apids[100].packet_length == 20
    e = error(tmp_path, BASE.replace('time = "cuc:4,2"', 'packet_length = 10'))
    assert "shorter than the 14 bytes" in str(e)

def test_insert_zone_time(tmp_path):
    m = load_mission(write(tmp_path, _aos_izt(6, "little")))
    izt = m.link.insert_zone_time
    assert (izt.offset, izt.length, izt.byteorder, izt.unit) == (0, 6, "little", 2 ** -16)
    assert izt.epoch_unix == 1577808000.0
    assert izt.as_link_config()["epoch"] == "2019-12-31T16:00:00Z"
    e = error(tmp_path, _aos_izt(9, "little"))
    assert "[link.insert_zone_time] length = 9" in str(e)
    e = error(tmp_path, _aos_izt(6, "middle"))
    assert '[link.insert_zone_time] byteorder = "middle"' in str(e)

def test_not_toml_and_missing_file(tmp_path):
    e = error(tmp_path, "[mission\nname=1")
    assert "not valid TOML" in str(e)
    with pytest.raises(MissionError, match="mission file not found"):
        load_mission(tmp_path / "absent.toml")

def test_loads_mission_from_text(tmp_path):
    (tmp_path / "hk.csv").write_text(HK_CSV)
    m = loads_mission(BASE, tmp_path / "virtual.toml")
    assert m.apids[100].definition == (tmp_path / "hk.csv").resolve()

def test_vc_helpers(tmp_path):
    text = _aos_izt(6, "little") + '[[virtual_channels]]\nid = 1\nocf = true\ndata = "vca"\n' \
        '[[virtual_channels]]\nid = 2\n'
    m = load_mission(write(tmp_path, text, csv=None))
    assert m.vc_data() == {1: "vca", 2: "packets"}
    assert m.ocf_vcids() == frozenset({1})
    assert load_mission(MISSIONS / "demo.toml").ocf_vcids() is True

@pytest.mark.parametrize("table,fragment", [
    ('year = "coarse"\nday = "fine"\nhour = "volt"', '[apids.time_fields] (APID 100) hour = "volt": not a field'),
    ('year = "coarse"', "[apids.time_fields] (APID 100) day: missing"),
    ('year = "coarse"\nday = "fine"\nweek = "fine"', "unknown key"),
])
def test_time_fields_mistakes(tmp_path, table, fragment):
    text = BASE.replace('time = "cuc:4,2"\n', "") + "[apids.time_fields]\n" + table + "\n"
    e = error(tmp_path, text)
    assert fragment in str(e), str(e)

def test_time_fields_exclusive_with_time_code(tmp_path):
    e = error(tmp_path, BASE + '[apids.time_fields]\nyear = "coarse"\nday = "fine"\n')
    assert "either time" in str(e)

def test_coding_keys_do_not_constrain_a_frames_mission(tmp_path):
    from groundseg.mission import channel_config, link_config
    m = load_mission(write(tmp_path, FRAMES_ONLY, csv=None))
    assert m.level == "frames" and m.link.frame_length == 1115
    assert link_config(m).frame_length == 1115
    # asking it for the channel coding (replay --level bits, simulate --level bits) names the key
    with pytest.raises(MissionError, match=r'\[link\] frame_length = 1115: with reed_solomon = "255,223"'):
        channel_config(m)
    # a coding key with a wrong value is still a mistake at level "frames"
    e = error(tmp_path, FRAMES_ONLY + 'reed_solomon = "255/223"\n', csv=None)
    assert '[link] reed_solomon = "255/223"' in str(e)
    # the frame keys still are checked at level "frames"
    e = error(tmp_path, FRAMES_ONLY.replace("frame_length = 1115", "frame_length = 7"), csv=None)
    assert "[link] frame_length = 7: must exceed the 8 bytes" in str(e)

def test_frame_keys_are_optional_at_level_packets(tmp_path):
    from groundseg.mission import link_config
    m = load_mission(write(tmp_path, '[mission]\nname = "pk"\n[link]\nlevel = "packets"\nbit_rate = 1e6\n', csv=None))
    assert m.level == "packets" and m.spacecraft_id is None and m.link.bit_rate == 1e6
    with pytest.raises(MissionError, match=r"\[link\] frame_length: missing \(required at level 'frames'\)"):
        link_config(m)

@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "{a = " * 5000 + "1" + "}" * 5000])
def test_deep_nesting_is_a_mission_error(tmp_path, value):
    e = error(tmp_path, BASE.replace('name = "test-sat"', f'name = "test-sat"\ndescription = {value}'))
    assert "nested 5000 deep" in str(e) and "recursion" not in str(e)

def test_brackets_inside_strings_are_not_nesting(tmp_path):
    m = load_mission(write(tmp_path, BASE.replace('name = "test-sat"',
                                                  'name = "test-sat"\ndescription = "' + "[" * 200 + '" # {{{{')))
    assert m.description == "[" * 200

@pytest.mark.parametrize("csv,fragment", [
    ("name,data_type,bit_length\nx,uint(999999999),8\n", "999999999 elements of 8 bits cannot fit a Space Packet"),
    ('name,data_type,bit_length\nx,"uint(2, 999999999)",8\n', "cannot fit a Space Packet"),
    ("name,data_type,bit_length\nx,uint(20000),16\ny,uint(20000),16\n", "the fields span 80006 bytes"),
    ("name,data_type,bit_length\nx,str,99999999999\n", "bit_length 99999999999: must be 1..524336"),
    ("name,data_type,bit_length,bit_offset\nx,uint,8,999999999999\n", "beyond the largest Space Packet"),
    ("name,data_type,bit_length\nx,uint(0),8\n", "array dimensions must be >= 1"),
])
def test_field_sizes_are_checked_at_load_time(tmp_path, csv, fragment):
    e = error(tmp_path, BASE.replace('time = "cuc:4,2"\n', ""), csv)
    assert 'definition = "hk.csv"' in str(e) and fragment in str(e), str(e)

def test_names_ignore_case(tmp_path):
    # APID names: looked up in any case, unique ignoring case
    m = load_mission(write(tmp_path, BASE))
    assert m.apid_by_name("HK") == m.apid_by_name("Hk") == 100 and m.apid("HK").name == "hk"
    e = error(tmp_path, BASE + '\n[[apids]]\nid = 101\nname = "HK"\n')
    assert '[[apids]] id = 101: name = "HK": duplicate APID name' in str(e)
    # field names: unique ignoring case, looked up ignoring case
    e = error(tmp_path, BASE, HK_CSV + "VOLTS,uint,8,,\n")
    assert "duplicate field name 'VOLTS' (names ignore case: 'volts' above)" in str(e)
    assert m.apids[100].field_name("VOLTS") == "volts"
    with pytest.raises(ValueError, match="no field 'volt'.*did you mean 'volts'"):
        m.apids[100].field_name("volt")
    # time_fields name the fields in any case; the model keeps the definition's spelling
    text = BASE.replace('time = "cuc:4,2"\n', "") + '[apids.time_fields]\nyear = "COARSE"\nday = "Fine"\n'
    assert load_mission(write(tmp_path, text)).apids[100].time_fields == {"year": "coarse", "day": "fine"}
    # virtual channel names too
    e = error(tmp_path, BASE + '\n[[virtual_channels]]\nid = 1\nname = "REALTIME"\n')
    assert "duplicate virtual channel name" in str(e)
