"""SSCC numbers and phone masking: the numbers a parcel carries must be whole."""

from __future__ import annotations

import dataclasses

import biip
import pytest

from printing.data import sample_label
from printing.gs1 import gs1_check_digit, is_valid_sscc, make_sscc, mask_phone, sscc_hri, validate_sscc


@pytest.mark.parametrize(
    ("prefix", "serial", "extension"),
    [("6901234", 1234567, 0), ("69012345", 1, 3), ("690123", 999_999_999, 9), ("6901234567", 0, 1),
     ("0614141", 123456789, 3)],
)
def test_make_sscc_builds_what_biip_accepts(prefix, serial, extension):
    sscc = make_sscc(prefix, serial, extension)

    parsed = biip.parse("]C100" + sscc)

    assert parsed.sscc is not None, parsed.sscc_error
    assert parsed.sscc.value == sscc
    assert parsed.sscc.extension_digit == extension
    assert sscc.startswith(f"{extension}{prefix}")
    assert int(sscc[1 + len(prefix):17]) == serial


def test_gs1_check_digit_of_the_standard_example():
    # the SSCC example of the GS1 General Specifications: (00) 1 0614141 234567890 8
    assert gs1_check_digit("10614141234567890") == 8
    assert make_sscc("0614141", 234567890, extension_digit=1) == "106141412345678908"


def test_a_wrong_sscc_check_digit_is_rejected_by_us_and_by_biip():
    good = make_sscc("6901234", 1234567)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)

    with pytest.raises(ValueError, match="check digit"):
        validate_sscc(bad)
    assert biip.parse("]C100" + bad).sscc is None
    with pytest.raises(ValueError, match="check digit"):
        dataclasses.replace(sample_label(), sscc=bad)


def test_every_single_digit_change_of_an_sscc_is_caught():
    sscc = make_sscc("6901234", 7654321)
    assert is_valid_sscc(sscc)
    for position in range(18):
        for digit in "0123456789":
            if digit == sscc[position]:
                continue
            changed = sscc[:position] + digit + sscc[position + 1:]
            assert not is_valid_sscc(changed), changed


@pytest.mark.parametrize("bad", ["", "12345", "0690123400123456790", "06901234001234567x", "０69012340012345679"])
def test_an_sscc_is_exactly_eighteen_ascii_digits(bad):
    with pytest.raises(ValueError):
        validate_sscc(bad)


def test_make_sscc_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        make_sscc("6901234", 10**9)  # 7-digit prefix leaves 9 serial digits
    with pytest.raises(ValueError, match="does not fit"):
        make_sscc("6901234", -1)
    with pytest.raises(ValueError, match="company prefix"):
        make_sscc("69-0123", 1)
    with pytest.raises(ValueError, match="company prefix"):
        make_sscc("690", 1)
    with pytest.raises(ValueError, match="extension"):
        make_sscc("6901234", 1, extension_digit=10)


def test_sscc_human_readable_text_groups_the_digits():
    assert sscc_hri("069012340012345679") == "(00) 0 6901234 001234567 9"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800000000", "138****0000"), ("+86 138 0000 0000", "138****0000"), ("86-13912345678", "139****5678"),
     ("021-58001234", "021****1234"), ("12345", "****45"), ("", "")],
)
def test_mask_phone_hides_the_middle_digits(phone, masked):
    assert mask_phone(phone) == masked


def test_masking_keeps_no_hidden_digit():
    masked = mask_phone("13812345678")
    assert masked == "138****5678"
    assert "1234" not in masked
