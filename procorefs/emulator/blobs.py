"""Content-addressed blob files: the bytes behind every file version and finished upload.

A blob's key is the SHA-256 of its content (hex). Layout under the store's root::

    objects/ab/<sha256>        the bytes (never rewritten once in place)
    objects/ab/<sha256>.md5    its MD5 (hex), so ETags need no re-hash
    staging/                   temp files (same filesystem, so ``os.replace`` is atomic)

Writes stream to a staging file while hashing, then the file is renamed into place; an existing
blob with the same key is kept and the new copy dropped (dedup). The ``.md5`` side file is put in
place *before* the blob, so a blob that exists always has its MD5. Blobs are never deleted: an
emulator run is short-lived and content-addressing makes a reset reuse them for free.

Everything here is blocking disk work; async callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1024 * 1024
_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobRef:
    key: str  # sha256, hex
    size: int
    sha256: str
    md5: str  # hex


class BlobHasher:
    """Size, SHA-256 and MD5 of a byte stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)
        self._md5.update(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def md5_digest(self) -> bytes:
        return self._md5.digest()


class StagedFile:
    """A staging file being written and hashed; ``BlobStore.adopt`` turns it into a blob.

    Used by the storage origin, which must hash a body as it arrives and decide afterwards
    (size and digests known) whether to keep it as a part file or a blob, or drop it.
    """

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle
        self.hasher = BlobHasher()

    def write(self, chunk: bytes) -> None:
        if self._handle is None:
            raise ValueError("staged file already closed")
        self._handle.write(chunk)
        self.hasher.update(chunk)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self.staging = root / "staging"
        self._objects.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise KeyError(key)
        return self._objects / key[:2] / key

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except KeyError:
            return False

    def lookup(self, key: str) -> BlobRef | None:
        """The ref of an existing blob, or None. Reads only the ``.md5`` side file."""
        try:
            path = self.path(key)
            size = path.stat().st_size
            md5 = path.with_name(key + ".md5").read_text("ascii").strip()
        except (KeyError, FileNotFoundError):
            return None
        return BlobRef(key=key, size=size, sha256=key, md5=md5)

    def put_chunks(self, chunks: Iterable[bytes], *,
                   expected_sha256: str | None = None) -> BlobRef:
        """Store a stream of chunks. With ``expected_sha256`` naming a blob already present,
        the chunks are not even read: that is what makes re-seeding a large demo cheap."""
        if expected_sha256 is not None:
            known = self.lookup(expected_sha256)
            if known is not None:
                return known
        staged = self.stage()
        try:
            for chunk in chunks:
                if chunk:
                    staged.write(chunk)
        except BaseException:
            staged.discard()
            raise
        return self.adopt(staged)

    def put_bytes(self, data: bytes) -> BlobRef:
        return self.put_chunks([data])

    def put_files(self, paths: Iterable[Path]) -> BlobRef:
        """The concatenation of several files as one blob (a multipart upload's parts)."""
        return self.put_chunks(_read_files(paths))

    def stage(self) -> StagedFile:
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="blob-", suffix=".part")
        return StagedFile(Path(name), os.fdopen(fd, "wb"))

    def adopt(self, staged: StagedFile) -> BlobRef:
        """Move a fully written staging file into place as a blob (or drop it as a duplicate)."""
        staged.close()
        hasher = staged.hasher
        ref = BlobRef(key=hasher.sha256, size=hasher.size, sha256=hasher.sha256, md5=hasher.md5)
        final = self.path(ref.key)
        if final.is_file():
            staged.path.unlink(missing_ok=True)
            return ref
        final.parent.mkdir(parents=True, exist_ok=True)
        md5_path = final.with_name(ref.key + ".md5")
        md5_tmp = md5_path.with_name(f".{ref.key}.md5.{os.getpid()}.{id(staged)}")
        md5_tmp.write_text(ref.md5 + "\n", "ascii")
        os.replace(md5_tmp, md5_path)
        os.replace(staged.path, final)
        return ref

    def read_chunks(self, key: str, offset: int = 0, length: int | None = None,
                    chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.path(key).open("rb") as handle:
            handle.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = handle.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def clear_staging(self) -> None:
        for leftover in self.staging.glob("blob-*.part"):
            leftover.unlink(missing_ok=True)


def _read_files(paths: Iterable[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
