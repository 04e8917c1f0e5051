"""Profiling a workload with py-spy: sample the mount (and the emulator) while it runs, and
boil the samples down to where the time went.

``python -m bench --profile`` runs the cold read, the cold listings and the write once more,
each with ``py-spy record --format raw`` attached to the mount process and to the emulator
for exactly the workload's duration, and writes ``bench/results/profile-<workload>.md``: the
functions most often on top of the stack (self time) and the procorefs/httpx functions most
often anywhere on it (inclusive time), as shares of the samples. Only the thread holding the
GIL is sampled (``--gil``): a Python process can run one thread of Python at a time, so the
shares say where its one core of Python went. Profiled passes are not part of the table
(sampling slows the process a little).

py-spy is a developer tool, not a dependency: ``pip install py-spy`` (a binary wheel).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# "name (package/module.py)" or "name (package/module.py:123)"
_FRAME = re.compile(r"^(?P<name>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class Profile:
    samples: int
    self_time: list[tuple[str, int]]       # leaf frame -> samples, most first
    inclusive: list[tuple[str, int]]       # frame anywhere on the stack -> samples

    def share(self, count: int) -> float:
        return count / self.samples if self.samples else 0.0


def frame_label(frame: str) -> str:
    """``read (procorefs/core/reader.py:80)`` -> ``procorefs/core/reader.py:read``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['file']}:{match['name']}"


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) format: ``frame;frame;...;leaf COUNT`` per line, outermost
    frame first; process and thread pseudo-frames are dropped."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if frames:
            stacks.append(([frame_label(f) for f in frames], int(count)))
    return stacks


def summarize(stacks: Sequence[tuple[list[str], int]], *,
              focus: Sequence[str] = ("procorefs/", "httpx/", "httpcore/", "mfusepy",
                                      "aiohttp/", "ssl", "socket"),
              top: int = 15) -> Profile:
    total = sum(n for _, n in stacks)
    leaf: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for frames, n in stacks:
        leaf[frames[-1]] += n
        for frame in set(frames):
            if any(f in frame for f in focus):
                anywhere[frame] += n
    return Profile(total, leaf.most_common(top), anywhere.most_common(top))


def render(title: str, profile: Profile) -> str:
    lines = [f"### {title}", "", f"{profile.samples} samples of the thread holding the GIL.", "",
             "| self | function (on top of the stack) |", "|---:|---|"]
    lines += [f"| {profile.share(n):.0%} | `{name}` |" for name, n in profile.self_time]
    lines += ["", "| inclusive | function (anywhere on the stack) |", "|---:|---|"]
    lines += [f"| {profile.share(n):.0%} | `{name}` |" for name, n in profile.inclusive]
    return "\n".join(lines) + "\n"


class Recorder:
    """``py-spy record`` attached to ``pid`` until ``stop()``; None-safe when absent."""

    def __init__(self, pid: int | None, output: Path) -> None:
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        spy = shutil.which("py-spy") or _venv_tool("py-spy")
        if spy is None or pid is None:
            return
        self.process = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
             "--rate", "250", "--nolineno", "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> Profile | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.output.exists():
            return None
        with self.output.open(encoding="utf-8", errors="replace") as raw:
            return summarize(parse_collapsed(raw))


def _venv_tool(name: str) -> str | None:
    import sys
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else None


def available() -> bool:
    return (shutil.which("py-spy") or _venv_tool("py-spy")) is not None
