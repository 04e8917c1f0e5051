"""Peak memory of a process from ``/proc`` (psutil is not a dependency).

``VmHWM`` in ``/proc/PID/status`` is the peak resident set size over the process's life;
writing ``5`` to ``/proc/PID/clear_refs`` (Linux 4.0+, our own or root's processes) resets it
to the current RSS, so the peak can be taken per workload on a long-lived mount. Where that
reset is refused, ``PeakSampler`` samples ``VmRSS`` instead (it can miss short spikes; the
result says which method was used).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

KiB = 1024


def status_field_kib(text: str, name: str) -> int | None:
    """The value in KiB of a ``Name:   1234 kB`` line of ``/proc/PID/status`` text."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            parts = value.split()
            if not parts:
                return None
            try:
                number = int(parts[0])
            except ValueError:
                return None
            unit = parts[1].lower() if len(parts) > 1 else "kb"
            return number if unit == "kb" else None
    return None


def _status(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def reset_peak(pid: int) -> bool:
    """Reset ``VmHWM`` of ``pid`` to its current RSS; False when the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


class PeakSampler:
    """Peak RSS of ``pid`` over a ``with`` block, in MiB (``peak_mib``)."""

    def __init__(self, pid: int | None, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.method = "none"
        self.peak_mib: float | None = None
        self._sampled_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakSampler:
        if self.pid is None:
            return self
        if reset_peak(self.pid):
            self.method = "VmHWM"
        else:
            self.method = "VmRSS sampled"
            self._thread = threading.Thread(target=self._sample, daemon=True,
                                            name="bench-rss")
            self._thread.start()
        return self

    def _sample(self) -> None:
        assert self.pid is not None
        while not self._stop.is_set():
            text = _status(self.pid)
            rss = status_field_kib(text, "VmRSS") if text else None
            if rss is not None:
                self._sampled_kib = max(self._sampled_kib, rss)
            self._stop.wait(self.interval)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.pid is None:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            kib = self._sampled_kib or None
        else:
            text = _status(self.pid)
            kib = status_field_kib(text, "VmHWM") if text else None
        self.peak_mib = kib / KiB if kib else None


def stat_cpu_ticks(text: str) -> int | None:
    """utime + stime (clock ticks) from the text of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may hold spaces, so fields are counted
    after its closing parenthesis: utime and stime are fields 14 and 15 of the line."""
    _, sep, rest = text.rpartition(")")
    if not sep:
        return None
    fields = rest.split()
    try:
        return int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) ``pid`` has used so far, or None if it cannot be read."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    ticks = stat_cpu_ticks(text)
    return None if ticks is None else ticks / _CLK_TCK


def _clk_tck() -> int:
    import os
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


_CLK_TCK = _clk_tck()
