"""Where and how a WinFsp volume is mounted: drive letter, network prefix, label, security,
and the FileSystem (``FSP_FSCTL_VOLUME_PARAMS``) options.

Pure logic, no Windows import: ``runner.py`` asks Windows which drive letters are in use and
who the user is, and hands the answers to these functions.

Mount targets (``procorefs mount TARGET``):
- ``P:`` (or ``P``, ``p:\\``): that drive letter; refused if it is in use;
- ``*``: the first free letter from the END of the alphabet (Z, Y, ... D), the letters
  least likely to be taken by disks, card readers and mapped shares;
- anything else: a directory path. WinFsp creates the directory itself, as a reparse point,
  so it must NOT exist yet; its parent must.

Volume options, deliberately:
- case-insensitive search, case-preserved names, Unicode on disk: what Windows applications
  expect of a drive (the core compares names case-folded, ``names.WindowsNameCodec``);
- persistent ACLs off: Procore has permissions, not ACLs; every item answers the same
  security descriptor, which gives the mounting user (and SYSTEM and Administrators) full
  control, so nothing is refused by Windows that Procore would allow;
- FileInfoTimeout and DirInfoTimeout of 1 s: Explorer asks the same questions many times a
  second while it paints a folder; WinFsp answers the repeats from memory;
- network mode (``--network``): a ``\\procorefs\\NAME`` prefix makes it a network file system
  (WinFsp.Net), so Explorer treats it like a mapped share: no thumbnail extraction, no
  previews read in the background, a "disconnect" entry;
- post-cleanup only when modified, and no named streams, hard links, reparse points or EAs:
  a document store has none of them.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any, Literal

VOLUME_LABEL_MAX = 32  # UTF-16 code units (FSP_FSCTL_VOLUME_INFO::VolumeLabel)
LABEL_PREFIX = "Procore – "
FILE_SYSTEM_NAME = "procorefs"
NETWORK_SERVER = "procorefs"
SECTOR_SIZE = 4096
MAX_COMPONENT_LENGTH = 255
# Letters "*" may pick, best first: A and B are floppies to Windows, C the system disk.
AUTO_LETTERS = string.ascii_uppercase[:2:-1]


class MountTargetError(ValueError):
    """The target cannot be mounted on; the message says why."""


@dataclass(frozen=True)
class MountTarget:
    kind: Literal["drive", "auto", "directory"]
    value: str  # "P:" for a drive, "*" for auto, the path for a directory


def parse_target(text: str) -> MountTarget:
    raw = text.strip()
    if raw == "*":
        return MountTarget("auto", "*")
    match = re.fullmatch(r"([A-Za-z]):?\\?", raw)
    if match:
        return MountTarget("drive", match.group(1).upper() + ":")
    if not raw:
        raise MountTargetError("give a drive letter (P:), * or a directory path")
    return MountTarget("directory", str(PureWindowsPath(raw)))


def letters_from_mask(mask: int) -> set[str]:
    """Drive letters in use, from ``GetLogicalDrives()``'s bit mask (bit 0 is A:)."""
    return {letter for i, letter in enumerate(string.ascii_uppercase) if mask >> i & 1}


def resolve_target(target: MountTarget, used_letters: set[str]) -> str:
    """The mountpoint WinFsp gets: ``"P:"`` or a directory path."""
    used = {u.rstrip(":").upper() for u in used_letters}
    if target.kind == "directory":
        return target.value
    if target.kind == "drive":
        if target.value[0] in used:
            raise MountTargetError(f"drive {target.value} is already in use; choose another "
                                   "letter, or * for the first free one")
        return target.value
    for letter in AUTO_LETTERS:
        if letter not in used:
            return f"{letter}:"
    raise MountTargetError("no drive letter is free (D: to Z: are all in use); "
                           "mount on a directory instead")


def volume_label(name: str) -> str:
    """``Procore – NAME``, cut (with an ellipsis) to the 32 UTF-16 units a label can hold."""
    label = LABEL_PREFIX + " ".join(name.split())
    if _utf16_len(label) <= VOLUME_LABEL_MAX:
        return label
    out = ""
    for c in label:
        if _utf16_len(out + c) > VOLUME_LABEL_MAX - 1:
            break
        out += c
    return out.rstrip() + "…"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def network_prefix(share: str) -> str:
    r"""The UNC prefix of a network-mode volume: ``\procorefs\SHARE`` (share made UNC-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", share).strip("-.") or "procore"
    return f"\\{NETWORK_SERVER}\\{safe[:64]}"


def default_sddl(user_sid: str) -> str:
    """Owner and group: the mounting user; full control (inherited by children) to that user,
    SYSTEM and Administrators; nobody else."""
    if not re.fullmatch(r"S-1(-\d+)+", user_sid):
        raise ValueError(f"not a SID: {user_sid!r}")
    return (f"O:{user_sid}G:{user_sid}D:P"
            f"(A;OICI;FA;;;{user_sid})(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")


@dataclass(frozen=True)
class VolumeOptions:
    label_name: str = ""
    network: bool = False
    share: str = ""
    file_info_timeout_ms: int = 1000
    dir_info_timeout_ms: int = 1000
    volume_info_timeout_ms: int = 1000
    read_only: bool = False


def volume_serial(seed: str) -> int:
    """A stable 32-bit serial number per mounted scope (Office remembers files by volume)."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "little")


def volume_params(options: VolumeOptions, mountpoint: str, *,
                  creation_filetime: int) -> dict[str, Any]:
    """The keyword arguments of ``winfspy.FileSystem`` besides the mountpoint and operations."""
    is_directory = not re.fullmatch(r"[A-Z]:", mountpoint)
    params: dict[str, Any] = {
        "sector_size": SECTOR_SIZE,
        "sectors_per_allocation_unit": 1,
        "max_component_length": MAX_COMPONENT_LENGTH,
        "volume_creation_time": creation_filetime,
        "volume_serial_number": volume_serial(options.share or options.label_name),
        "file_info_timeout": options.file_info_timeout_ms,
        "dir_info_timeout_valid": 1,
        "dir_info_timeout": options.dir_info_timeout_ms,
        "volume_info_timeout_valid": 1,
        "volume_info_timeout": options.volume_info_timeout_ms,
        "case_sensitive_search": 0,
        "case_preserved_names": 1,
        "unicode_on_disk": 1,
        "persistent_acls": 0,
        "reparse_points": 0,
        "named_streams": 0,
        "hard_links": 0,
        "extended_attributes": 0,
        "read_only_volume": int(options.read_only),
        "post_cleanup_when_modified_only": 1,
        "pass_query_directory_file_name": 1,
        "um_file_context_is_user_context2": 1,
        "file_system_name": FILE_SYSTEM_NAME,
        "prefix": network_prefix(options.share or options.label_name) if options.network
        else "",
        # Some antivirus filters send IRPs before the file system is ready; refusing them
        # only matters (and only works) for directory mountpoints.
        "reject_irp_prior_to_transact0": int(is_directory),
    }
    return params
