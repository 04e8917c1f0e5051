"""Mount targets, drive letters, labels, security and volume options (adapters/winfsp)."""

from __future__ import annotations

import pytest

from procorefs.adapters.winfsp.mountpoint import (
    MountTarget,
    MountTargetError,
    VolumeOptions,
    default_sddl,
    letters_from_mask,
    network_prefix,
    parse_target,
    resolve_target,
    volume_label,
    volume_params,
)

SID = "S-1-5-21-3623811015-3361044348-30300820-1013"


@pytest.mark.parametrize(("text", "target"), [
    ("P:", MountTarget("drive", "P:")),
    ("p", MountTarget("drive", "P:")),
    ("q:\\", MountTarget("drive", "Q:")),
    ("*", MountTarget("auto", "*")),
    ("C:\\Users\\dana\\Procore", MountTarget("directory", "C:\\Users\\dana\\Procore")),
    ("D:/mounts/procore", MountTarget("directory", "D:\\mounts\\procore")),
])
def test_parse_target(text: str, target: MountTarget) -> None:
    assert parse_target(text) == target


def test_an_empty_target_is_refused() -> None:
    with pytest.raises(MountTargetError):
        parse_target("  ")


def test_star_takes_the_first_free_letter_from_the_end() -> None:
    assert resolve_target(parse_target("*"), {"C", "D"}) == "Z:"
    assert resolve_target(parse_target("*"), {"C:", "Z:", "Y:"}) == "X:"
    everything_but_d = set("ABCEFGHIJKLMNOPQRSTUVWXYZ")
    assert resolve_target(parse_target("*"), everything_but_d) == "D:"


def test_star_never_takes_a_b_or_c() -> None:
    with pytest.raises(MountTargetError, match="no drive letter is free"):
        resolve_target(parse_target("*"), set("DEFGHIJKLMNOPQRSTUVWXYZ"))


def test_an_explicit_letter_in_use_is_refused() -> None:
    assert resolve_target(parse_target("P:"), {"C"}) == "P:"
    with pytest.raises(MountTargetError, match="P: is already in use"):
        resolve_target(parse_target("p"), {"C", "P"})


def test_a_directory_is_used_as_given() -> None:
    assert resolve_target(parse_target("C:\\mnt\\procore"), {"C"}) == "C:\\mnt\\procore"


def test_letters_from_the_logical_drives_mask() -> None:
    assert letters_from_mask(0b1101) == {"A", "C", "D"}
    assert letters_from_mask(1 << 25) == {"Z"}


def test_volume_label() -> None:
    assert volume_label("Riverside Medical") == "Procore – Riverside Medical"
    long = volume_label("Riverside Medical Office Building Phase 2")
    assert len(long.encode("utf-16-le")) // 2 <= 32
    assert long.startswith("Procore – Riverside") and long.endswith("…")
    assert volume_label("现场 " * 20).endswith("…")


def test_network_prefix_is_a_safe_unc_share() -> None:
    assert network_prefix("Riverside Medical #2") == "\\procorefs\\Riverside-Medical-2"
    assert network_prefix("***") == "\\procorefs\\procore"


def test_default_sddl_gives_the_user_full_control() -> None:
    sddl = default_sddl(SID)
    assert sddl.startswith(f"O:{SID}G:{SID}D:P")
    assert f"(A;OICI;FA;;;{SID})" in sddl
    assert "WD" not in sddl  # not Everyone
    with pytest.raises(ValueError, match="not a SID"):
        default_sddl("O:BA)(A;;FA;;;WD")


def test_volume_params_for_a_drive() -> None:
    params = volume_params(VolumeOptions(label_name="Riverside"), "P:", creation_filetime=123)
    assert params["case_sensitive_search"] == 0
    assert params["case_preserved_names"] == 1
    assert params["unicode_on_disk"] == 1
    assert params["persistent_acls"] == 0
    assert params["file_info_timeout"] == 1000
    assert (params["dir_info_timeout_valid"], params["dir_info_timeout"]) == (1, 1000)
    assert params["prefix"] == ""
    assert params["reject_irp_prior_to_transact0"] == 0
    assert params["volume_creation_time"] == 123
    assert params["file_system_name"] == "procorefs"


def test_volume_params_network_mode_and_directory() -> None:
    params = volume_params(VolumeOptions(label_name="Riverside", network=True, share="318842"),
                           "C:\\mnt\\procore", creation_filetime=1)
    assert params["prefix"] == "\\procorefs\\318842"
    assert params["reject_irp_prior_to_transact0"] == 1


def test_the_serial_number_is_stable_per_scope() -> None:
    a = volume_params(VolumeOptions(label_name="A"), "P:", creation_filetime=1)
    b = volume_params(VolumeOptions(label_name="A"), "Q:", creation_filetime=2)
    c = volume_params(VolumeOptions(label_name="B"), "P:", creation_filetime=1)
    assert a["volume_serial_number"] == b["volume_serial_number"]
    assert a["volume_serial_number"] != c["volume_serial_number"]
