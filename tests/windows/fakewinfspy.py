"""A stand-in ``winfspy`` with only the names ``procorefs/adapters/winfsp/operations.py`` uses.

Test code: it lets the Windows tier import and drive the adapter on any OS. What each name
does is what winfspy 0.8 does at the boundary the adapter sees:

- ``NTStatusError(status)``: ``.value`` is the NTSTATUS winfspy hands back to WinFsp;
- ``BaseFileSystemOperations``: the base class (its ``__init__`` sets ``_opened_objs``);
- ``plumbing.SecurityDescriptor.from_string(sddl)``: a descriptor with ``handle`` and
  ``size`` (here the SDDL text itself, so tests can read back what the adapter serves);
- ``FileSystem(mountpoint, operations, debug=False, **volume_params)``: refuses what the real
  one refuses (an operations object of the wrong type, ``pass_query_directory_pattern``, an
  unknown volume parameter, starting twice, stopping when not started) and records the rest.

``install()`` puts ``winfspy`` and ``winfspy.plumbing`` into ``sys.modules``; ``uninstall()``
takes them (and the adapter module that imported them) out again.
"""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

# The keyword arguments of winfspy's _volume_params_factory (file_system.py).
VOLUME_PARAMS = frozenset({
    "sector_size", "sectors_per_allocation_unit", "max_component_length",
    "volume_creation_time", "volume_serial_number", "transact_timeout", "irp_timeout",
    "irp_capacity", "file_info_timeout", "case_sensitive_search", "case_preserved_names",
    "unicode_on_disk", "persistent_acls", "reparse_points", "reparse_points_access_check",
    "named_streams", "hard_links", "extended_attributes", "read_only_volume",
    "post_cleanup_when_modified_only", "pass_query_directory_pattern",
    "always_use_double_buffering", "pass_query_directory_file_name",
    "flush_and_purge_on_cleanup", "device_control", "um_file_context_is_user_context2",
    "um_file_context_is_full_context", "um_reserved_flags", "allow_open_in_kernel_mode",
    "case_preserved_extended_attributes", "wsl_features", "directory_marker_as_next_offset",
    "reject_irp_prior_to_transact0", "km_reserved_flags", "prefix", "file_system_name",
    "volume_info_timeout_valid", "dir_info_timeout_valid", "security_timeout_valid",
    "stream_info_timeout_valid", "km_additional_reserved_flags", "volume_info_timeout",
    "dir_info_timeout", "security_timeout", "stream_info_timeout",
})


class WinFSPyError(Exception):
    pass


class NTStatusError(WinFSPyError):
    @property
    def value(self) -> int:
        return int(self.args[0])


class BaseFileSystemOperations:
    def __init__(self) -> None:
        self._opened_objs: dict[Any, Any] = {}


class SecurityDescriptor:
    def __init__(self, sddl: str) -> None:
        self.handle = sddl
        self.size = len(sddl.encode("utf-16-le")) + 2

    @classmethod
    def from_string(cls, string_format: str) -> SecurityDescriptor:
        if not string_format.startswith("O:"):
            raise RuntimeError(f"Cannot create security descriptor `{string_format}`")
        return cls(string_format)


class FileSystem:
    instances: ClassVar[list[FileSystem]] = []

    def __init__(self, mountpoint: str, operations: Any, debug: bool = False,
                 **volume_params: Any) -> None:
        if not isinstance(operations, BaseFileSystemOperations):
            raise ValueError("`operations` must be a `BaseFileSystemOperations` instance.")
        unknown = set(volume_params) - VOLUME_PARAMS
        if unknown:
            raise TypeError(f"unexpected volume parameters {sorted(unknown)}")
        if volume_params.get("pass_query_directory_pattern"):
            raise ValueError("The `pass_query_directory_pattern` mode is not supported")
        self.mountpoint = mountpoint
        self.operations: Any = operations
        self.debug = debug
        self.volume_params = volume_params
        self.started = False
        self.starts = 0
        self.stops = 0
        FileSystem.instances.append(self)

    def start(self) -> None:
        if self.started:
            raise WinFSPyError("already started")
        self.started = True
        self.starts += 1

    def stop(self) -> None:
        if not self.started:
            raise WinFSPyError("not started")
        self.started = False
        self.stops += 1


_NAMES = ("winfspy", "winfspy.plumbing")
_ADAPTER = "procorefs.adapters.winfsp.operations"


def install() -> None:
    package = types.ModuleType("winfspy")
    plumbing = types.ModuleType("winfspy.plumbing")
    package.__path__ = []
    for name, value in (("BaseFileSystemOperations", BaseFileSystemOperations),
                        ("FileSystem", FileSystem), ("NTStatusError", NTStatusError),
                        ("WinFSPyError", WinFSPyError), ("plumbing", plumbing)):
        setattr(package, name, value)
    plumbing.SecurityDescriptor = SecurityDescriptor  # type: ignore[attr-defined]
    sys.modules.pop(_ADAPTER, None)
    sys.modules["winfspy"] = package
    sys.modules["winfspy.plumbing"] = plumbing


def uninstall() -> None:
    for name in (*_NAMES, _ADAPTER):
        sys.modules.pop(name, None)
