"""The sample generators make files that real readers accept, the same bytes every time,
streamed in chunks of at most 1 MiB.

Validity is checked by parsing: the PDF's own xref, the zips' XML parts, a strict baseline JPEG
decoder written here (it rejects any bad Huffman code and compares the picture with the source
scene), plus `file` and gdk-pixbuf when this machine has them.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from procorefs.emulator import samples
from procorefs.emulator.samples import CHUNK_SIZE, GeneratedContent

MiB = 1 << 20


def _bytes(content: GeneratedContent) -> bytes:
    chunks = list(content())
    assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    data = b"".join(chunks)
    assert len(data) == content.size
    return data


def _file_says(tmp_path: Path, name: str, data: bytes) -> str | None:
    tool = shutil.which("file")
    if tool is None:
        return None
    target = tmp_path / name
    target.write_bytes(data)
    return subprocess.run([tool, "-b", str(target)], capture_output=True, text=True,
                          check=True, timeout=30).stdout


# --- PDF ---------------------------------------------------------------------------------------


def _check_pdf(data: bytes) -> int:
    """Validate the structure through the file's own xref; returns the object count."""
    assert data.startswith(b"%PDF-1.4\n")
    assert data.endswith(b"%%EOF\n")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))  # type: ignore[union-attr]
    assert data[startxref : startxref + 5] == b"xref\n"
    header = re.match(rb"xref\n0 (\d+)\n", data[startxref:])
    assert header is not None
    count = int(header.group(1))
    table_at = startxref + header.end()
    entries = [data[table_at + 20 * i : table_at + 20 * (i + 1)] for i in range(count)]
    assert entries[0] == b"0000000000 65535 f \n"
    for number, entry in enumerate(entries[1:], start=1):
        match = re.fullmatch(rb"(\d{10}) 00000 n \n", entry)
        assert match, entry
        offset = int(match.group(1))
        assert data[offset:].startswith(b"%d 0 obj\n" % number), (number, offset)
    trailer = data[table_at + 20 * count :]
    assert trailer.startswith(b"trailer\n<< /Size %d /Root 1 0 R" % count)
    # Every stream's /Length is the exact byte count between "stream\n" and "\nendstream".
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", data):
        end = match.end() + int(match.group(1))
        assert data[end : end + 10] == b"\nendstream"
    return count - 1


def test_pdf_xref_offsets_point_at_their_objects(tmp_path: Path) -> None:
    content = samples.pdf("A-101", "A-101 First Floor Plan — Café 現場", ["Line (one)", "a\\b"])
    data = _bytes(content)
    assert _check_pdf(data) == 6
    assert b"/Type /Page " in data and b"/BaseFont /Helvetica" in data
    assert b"(Line \\(one\\)) Tj" in data and b"(a\\\\b) Tj" in data
    said = _file_says(tmp_path, "a.pdf", data)
    if said is not None:
        assert "PDF document, version 1.4" in said


def test_pdf_padding_reaches_the_size_and_streams(tmp_path: Path) -> None:
    wanted = 3 * MiB + 12345
    content = samples.pdf("big drawing", pad_to=wanted)
    assert content.size == wanted
    data = _bytes(content)
    assert len(data) == wanted
    assert _check_pdf(data) == 7
    said = _file_says(tmp_path, "big.pdf", data)
    if said is not None:
        assert "PDF document" in said


# --- Office Open XML ---------------------------------------------------------------------------


def _check_ooxml(data: bytes, main_part: str) -> dict[str, ElementTree.Element]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[0] == "[Content_Types].xml"
        parts = {name: ElementTree.fromstring(archive.read(name)) for name in names}
    ct_ns = "{http://schemas.openxmlformats.org/package/2006/content-types}"
    overrides = [o.get("PartName") for o in parts["[Content_Types].xml"].iter(f"{ct_ns}Override")]
    assert f"/{main_part}" in overrides
    for part in overrides:
        assert part is not None and part[1:] in parts, part
    rel_ns = "{http://schemas.openxmlformats.org/package/2006/relationships}"
    for name, root in parts.items():
        if not name.endswith(".rels"):
            continue
        base = name.split("_rels/")[0]
        for rel in root.iter(f"{rel_ns}Relationship"):
            target = rel.get("Target")
            assert target is not None and base + target in parts, (name, target)
    targets = [r.get("Target") for r in parts["_rels/.rels"].iter(f"{rel_ns}Relationship")]
    assert main_part in targets
    return parts


def test_docx_is_a_valid_word_package(tmp_path: Path) -> None:
    data = _bytes(samples.docx("minutes", "OAC Meeting 014 <final> & notes",
                               ["# Attendees", "Dana & Alex", "Café, 現場 🎉"]))
    parts = _check_ooxml(data, "word/document.xml")
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    texts = [t.text for t in parts["word/document.xml"].iter(f"{w}t")]
    assert texts == ["OAC Meeting 014 <final> & notes", "Attendees", "Dana & Alex",
                     "Café, 現場 🎉"]
    said = _file_says(tmp_path, "a.docx", data)
    if said is not None:
        assert "Microsoft Word 2007+" in said


def test_xlsx_is_a_valid_workbook_with_the_rows(tmp_path: Path) -> None:
    rows: list[tuple[samples.Cell, ...]] = [
        ("Code", "Description", "Amount"),
        ("03-300", "Concrete <CIP>", 1250.5),
        ("05-120", "Steel", 98000),
    ]
    data = _bytes(samples.xlsx("budget", "Budget: 2024 [draft]?", rows))
    parts = _check_ooxml(data, "xl/workbook.xml")
    s = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    sheet_name = next(parts["xl/workbook.xml"].iter(f"{s}sheet")).get("name")
    assert sheet_name is not None and len(sheet_name) <= 31
    assert not set(sheet_name) & set("[]:*?/\\")
    found: list[list[str]] = []
    for row in parts["xl/worksheets/sheet1.xml"].iter(f"{s}row"):
        found.append([(c.findtext(f"{s}is/{s}t") or c.findtext(f"{s}v") or "")
                      for c in row.iter(f"{s}c")])
    assert found == [["Code", "Description", "Amount"], ["03-300", "Concrete <CIP>", "1250.5"],
                     ["05-120", "Steel", "98000"]]
    said = _file_says(tmp_path, "a.xlsx", data)
    if said is not None:
        assert "Microsoft Excel 2007+" in said


def test_default_office_content_is_valid() -> None:
    _check_ooxml(_bytes(samples.docx("generated")), "word/document.xml")
    _check_ooxml(_bytes(samples.xlsx("generated")), "xl/workbook.xml")


# --- DWG, LAS, text, empty -------------------------------------------------------------------


def test_dwg_has_an_autocad_2018_header(tmp_path: Path) -> None:
    data = _bytes(samples.dwg("detail", 150 * 1024 + 7))
    assert len(data) == 150 * 1024 + 7
    assert data[:6] == b"AC1032" and data[6:11] == b"\0" * 5
    assert struct.unpack_from("<H", data, 0x13)[0] == 30
    assert struct.unpack_from("<I", data, 0x28)[0] == 0x80
    said = _file_says(tmp_path, "a.dwg", data)
    if said is not None:
        assert "AutoCAD 2018" in said
    with pytest.raises(ValueError):
        samples.dwg("tiny", 10)


def test_las_header_agrees_with_the_size() -> None:
    content = samples.las("cloud", 1000)
    data = _bytes(content)
    assert data[:4] == b"LASF" and data[24:26] == b"\x01\x02"
    header_size, offset = struct.unpack_from("<HI", data, 94)
    _, record_format, record_size, points = struct.unpack_from("<IBHI", data, 100)
    assert (header_size, offset, record_format, record_size) == (227, 227, 0, 20)
    assert points == 1000 and len(data) == 227 + 20 * points


def test_text_and_empty() -> None:
    assert _bytes(samples.text("notes", "Ünïcode line\n")) == "Ünïcode line\n".encode()
    generated = _bytes(samples.text("site notes")).decode("utf-8")
    assert generated.startswith("site notes\n") and generated.count("\n") >= 6
    empty = samples.empty()
    assert list(empty()) == [] and empty.size == 0


# --- the big stream ----------------------------------------------------------------------------


def test_random_stream_chunks_never_exceed_one_mib() -> None:
    size = 3 * MiB + 5
    content = samples.random_bytes("stream", size, header=b"HEAD")
    sizes = [len(c) for c in content()]
    assert sum(sizes) == size == content.size
    assert max(sizes) <= MiB
    assert sizes[0] == 4  # the header comes first, on its own


def test_random_stream_is_lazy() -> None:
    # 64 GiB: only a generator that computes chunks on demand can answer this at once.
    content = samples.random_bytes("huge", 64 << 30)
    first_two = list(itertools.islice(content(), 2))
    assert [len(c) for c in first_two] == [MiB, MiB]
    assert content.size == 64 << 30


def test_random_stream_is_deterministic_and_seeded() -> None:
    one = _bytes(samples.random_bytes("x", MiB + 3))
    assert one == _bytes(samples.random_bytes("x", MiB + 3))
    assert one != _bytes(samples.random_bytes("y", MiB + 3))
    # A shorter stream of the same seed is a prefix: sizes don't reshuffle the bytes.
    assert _bytes(samples.random_bytes("x", 1000)) == one[:1000]
    # Bytes look random: every value appears, none dominates.
    counts = [one.count(bytes([b])) for b in range(256)]
    assert min(counts) > 0 and max(counts) < 3 * len(one) / 256


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: samples.pdf(seed),
        lambda seed: samples.pdf(seed, pad_to=200_000),
        lambda seed: samples.docx(seed),
        lambda seed: samples.xlsx(seed),
        lambda seed: samples.dwg(seed),
        lambda seed: samples.jpeg(seed, 24, 16),
        lambda seed: samples.text(seed),
        lambda seed: samples.las(seed, 10),
    ],
    ids=["pdf", "pdf-padded", "docx", "xlsx", "dwg", "jpeg", "text", "las"],
)
def test_same_seed_same_bytes(make: Callable[[str], GeneratedContent]) -> None:
    first = make("seed one")
    data = _bytes(first)
    samples.clear_caches()  # rebuild from scratch, not from the memo
    again = make("seed one")
    assert _bytes(again) == data and again.key == first.key
    other = make("seed two")
    assert _bytes(other) != data and other.key != first.key


# --- JPEG --------------------------------------------------------------------------------------


def _segments(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(marker, payload, end offset) for each marker segment up to and including SOS."""
    assert data[:2] == b"\xff\xd8"
    pos = 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, data[pos + 4 : pos + 2 + length], pos + 2 + length
        if marker == 0xDA:
            return
        pos += 2 + length


def _decode_jpeg(data: bytes) -> tuple[int, int, list[tuple[float, float, float]]]:
    """A strict baseline decoder: any malformed structure or code fails an assert."""
    quant: dict[int, list[int]] = {}
    tables: dict[tuple[int, int], dict[tuple[int, int], int]] = {}
    components: list[tuple[int, int]] = []  # (component id, quant table)
    scan: list[tuple[int, int, int]] = []  # (component id, dc table, ac table)
    width = height = 0
    scan_start = 0
    for marker, payload, end in _segments(data):
        if marker == 0xDB:
            pos = 0
            while pos < len(payload):
                assert payload[pos] >> 4 == 0  # 8-bit precision
                quant[payload[pos] & 15] = list(payload[pos + 1 : pos + 65])
                pos += 65
        elif marker == 0xC4:
            pos = 0
            while pos < len(payload):
                cls, ident = payload[pos] >> 4, payload[pos] & 15
                counts = payload[pos + 1 : pos + 17]
                symbols = payload[pos + 17 : pos + 17 + sum(counts)]
                codes: dict[tuple[int, int], int] = {}
                code = k = 0
                for length in range(1, 17):
                    for _ in range(counts[length - 1]):
                        codes[(length, code)] = symbols[k]
                        code += 1
                        k += 1
                    code <<= 1
                tables[(cls, ident)] = codes
                pos += 17 + sum(counts)
        elif marker == 0xC0:
            precision, height, width, count = struct.unpack(">BHHB", payload[:6])
            assert precision == 8 and count == 3
            for i in range(count):
                ident, sampling, table = payload[6 + 3 * i : 9 + 3 * i]
                assert sampling == 0x11
                components.append((ident, table))
        elif marker == 0xDA:
            count = payload[0]
            for i in range(count):
                ident, selectors = payload[1 + 2 * i : 3 + 2 * i]
                scan.append((ident, selectors >> 4, selectors & 15))
            assert payload[1 + 2 * count :] == bytes([0, 63, 0])
            scan_start = end
    assert data.endswith(b"\xff\xd9")
    entropy = data[scan_start:-2]
    # Inside entropy-coded data every 0xFF is stuffed with 0x00 (no RST markers are used).
    assert all(entropy[i + 1] == 0 for i in range(len(entropy)) if entropy[i] == 0xFF)
    bits = "".join(f"{b:08b}" for b in entropy.replace(b"\xff\x00", b"\xff"))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        assert pos + n <= len(bits), "entropy data ran out"
        value = int(bits[pos : pos + n], 2) if n else 0
        pos += n
        return value

    def symbol(table: dict[tuple[int, int], int]) -> int:
        code = 0
        for length in range(1, 17):
            code = (code << 1) | read(1)
            if (length, code) in table:
                return table[(length, code)]
        raise AssertionError("invalid Huffman code")

    def extend(value: int, size: int) -> int:
        return value if size == 0 or value >= 1 << (size - 1) else value - (1 << size) + 1

    zigzag = samples._ZIGZAG
    idct = [[(math.sqrt(0.125) if u == 0 else 0.5) * math.cos((2 * x + 1) * u * math.pi / 16)
             for u in range(8)] for x in range(8)]
    planes = [[0.0] * (width * height) for _ in components]
    previous = [0] * len(components)
    for by in range(0, height, 8):
        for bx in range(0, width, 8):
            for c, (ident, dc_id, ac_id) in enumerate(scan):
                assert ident == components[c][0]
                q = quant[components[c][1]]
                coeffs = [0] * 64
                size = symbol(tables[(0, dc_id)])
                previous[c] += extend(read(size), size)
                coeffs[0] = previous[c] * q[0]
                k = 1
                while k < 64:
                    rs = symbol(tables[(1, ac_id)])
                    run, size = rs >> 4, rs & 15
                    if size == 0:
                        if run == 15:
                            k += 16
                            continue
                        assert run == 0
                        break
                    k += run
                    assert k < 64
                    coeffs[zigzag[k]] = extend(read(size), size) * q[k]
                    k += 1
                for y in range(8):
                    for x in range(8):
                        if by + y < height and bx + x < width:
                            value = sum(idct[y][v] * idct[x][u] * coeffs[v * 8 + u]
                                        for v in range(8) for u in range(8) if coeffs[v * 8 + u])
                            planes[c][(by + y) * width + bx + x] = value + 128
    rest = bits[pos:]
    assert len(rest) < 8 and set(rest) <= {"1"}, "trailing entropy data"
    rgb = []
    for yy, cb, cr in zip(*planes, strict=True):
        rgb.append((yy + 1.402 * (cr - 128), yy - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                    yy + 1.772 * (cb - 128)))
    return width, height, rgb


def test_jpeg_markers_are_in_baseline_order() -> None:
    data = _bytes(samples.jpeg("photo", 40, 24))
    markers = [m for m, _, _ in _segments(data)]
    assert markers == [0xE0, 0xDB, 0xDB, 0xC0, 0xC4, 0xC4, 0xC4, 0xC4, 0xDA]
    app0 = next(p for m, p, _ in _segments(data) if m == 0xE0)
    assert app0.startswith(b"JFIF\0\x01\x01")


@pytest.mark.parametrize(("width", "height"), [(40, 24), (21, 13)])
def test_jpeg_decodes_to_the_scene(width: int, height: int) -> None:
    seed = f"site photo {width}x{height}"
    got_w, got_h, pixels = _decode_jpeg(_bytes(samples.jpeg(seed, width, height, quality=90)))
    assert (got_w, got_h) == (width, height)
    source = samples._scene(seed, width, height)
    error = sum(abs(a - b) for p, s in zip(pixels, source, strict=True)
                for a, b in zip(p, s, strict=True)) / (3 * len(source))
    assert error < 6.0, error


def test_jpeg_uses_the_standard_huffman_tables() -> None:
    every_ac = {0x00, 0xF0} | {run << 4 | size for run in range(16) for size in range(1, 11)}
    for spec in (samples.HUFFMAN_AC_LUMA, samples.HUFFMAN_AC_CHROMA):
        assert len(spec[1]) == sum(spec[0]) == 162 and set(spec[1]) == every_ac
    luma = samples.huffman_codes(samples.HUFFMAN_AC_LUMA)
    chroma = samples.huffman_codes(samples.HUFFMAN_AC_CHROMA)
    # Annex K.3: EOB is 1010 and ZRL 11111111001 for luminance; EOB 00, ZRL 1111111010 chroma.
    assert luma[0x00] == (0b1010, 4) and luma[0xF0] == (0b11111111001, 11)
    assert chroma[0x00] == (0b00, 2) and chroma[0xF0] == (0b1111111010, 10)
    assert samples.huffman_codes(samples.HUFFMAN_DC_LUMA)[0] == (0b00, 2)


def test_jpeg_real_decoders_accept_it(tmp_path: Path) -> None:
    data = _bytes(samples.jpeg("photo", 96, 64))
    said = _file_says(tmp_path, "a.jpg", data)
    if said is not None:
        assert "JPEG image data, JFIF standard 1.01" in said and "96x64" in said
    thumbnailer = shutil.which("gdk-pixbuf-thumbnailer")
    if thumbnailer is None:
        if said is None:
            pytest.skip("neither `file` nor gdk-pixbuf-thumbnailer is installed")
        return
    source = tmp_path / "b.jpg"
    source.write_bytes(data)
    out = tmp_path / "b.png"
    subprocess.run([thumbnailer, "-s", "96", str(source), str(out)], check=True,
                   timeout=60, capture_output=True)
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (96, 64)


def test_jpeg_rejects_sizes_it_cannot_make_quickly() -> None:
    with pytest.raises(ValueError):
        samples.jpeg("x", 4000, 10)
