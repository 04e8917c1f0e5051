"""Real, valid file content for the seeds, generated locally with the stdlib only.

Owns the sample generators: PDF 1.4, DOCX and XLSX (Office Open XML zips), a DWG-like binary,
baseline JPEG (a tiny encoder), plain text, a LAS point-cloud-like file and a pseudo-random
stream for big files. Every generator is a pure function of its arguments (the ``seed`` string
feeds whatever is random), and returns a ``GeneratedContent``: a ``seedtypes.Content`` callable
that yields chunks of at most ``CHUNK_SIZE`` bytes, and also knows its size, media type and a
stable ``key`` (equal keys mean equal bytes), so a store may skip re-reading content it already
holds. Big content is streamed and never held; small content is built once and memoised.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import operator
import struct
import zipfile
from collections.abc import Callable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

CHUNK_SIZE = 1 << 20
MiB = 1 << 20

Cell = str | int | float


class GeneratedContent:
    """A ``Content`` (call it for a fresh iterator of chunks) with its size and identity.

    ``key`` names the bytes: two contents with the same key yield the same bytes, in any run.
    """

    __slots__ = ("_chunks", "_size", "key", "kind", "media_type")

    def __init__(
        self,
        kind: str,
        media_type: str,
        key: str,
        size: Callable[[], int],
        chunks: Callable[[], Iterator[bytes]],
    ) -> None:
        self.kind = kind
        self.media_type = media_type
        self.key = key
        self._size = size
        self._chunks = chunks

    def __call__(self) -> Iterator[bytes]:
        return self._chunks()

    @property
    def size(self) -> int:
        return self._size()

    def read_all(self) -> bytes:
        """The whole content; meant for small files and tests, never for big ones."""
        return b"".join(self._chunks())

    def __repr__(self) -> str:
        return f"GeneratedContent({self.kind!r}, key={self.key[:12]!r})"


def _key(kind: str, *params: object) -> str:
    return hashlib.sha256(repr((kind, params)).encode()).hexdigest()


def _split(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start : start + CHUNK_SIZE]


def _from_builder(
    kind: str, media_type: str, build: Callable[[], bytes], *params: object
) -> GeneratedContent:
    # ``build`` is memoised by the caller (lru_cache), so resets reuse the bytes.
    return GeneratedContent(
        kind, media_type, _key(kind, *params), lambda: len(build()), lambda: _split(build())
    )


# --- deterministic randomness ---------------------------------------------------------------
# SHAKE-128 in counter mode: stable across Python versions and platforms (unlike ``random``'s
# helpers), and fast enough (~500 MB/s here) to stream hundreds of MiB.


def _stream_block(seed: str, index: int, length: int) -> bytes:
    material = b"procorefs-sample\0" + seed.encode() + b"\0" + index.to_bytes(8, "big")
    return hashlib.shake_128(material).digest(length)


def _random_chunks(seed: str, size: int) -> Iterator[bytes]:
    index = 0
    remaining = size
    while remaining > 0:
        length = min(CHUNK_SIZE, remaining)
        yield _stream_block(seed, index, length)
        remaining -= length
        index += 1


class _Rng:
    """A small deterministic generator for choices in generated text and numbers."""

    def __init__(self, seed: str) -> None:
        self._seed = "rng:" + seed
        self._block = 0
        self._buf = b""
        self._pos = 0

    def _take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            self._buf = _stream_block(self._seed, self._block, 4096)
            self._block += 1
            self._pos = 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def below(self, n: int) -> int:
        return int.from_bytes(self._take(8), "big") % n

    def unit(self) -> float:
        return int.from_bytes(self._take(7), "big") / float(1 << 56)

    def choice(self, items: Sequence[str]) -> str:
        return items[self.below(len(items))]


_SUBJECTS = (
    "The contractor", "The architect", "The structural engineer", "The owner's representative",
    "The MEP coordinator", "The superintendent", "The steel erector", "The concrete sub",
    "The inspector", "The project manager",
)
_VERBS = (
    "confirmed", "requested", "reviewed", "approved", "rejected", "clarified", "revised",
    "coordinated", "scheduled", "flagged",
)
_OBJECTS = (
    "the slab edge dimensions at grid C/4", "the rebar spacing in the mat foundation",
    "the embed plates at the second floor", "the curtain wall anchor layout",
    "the duct routing above the corridor ceiling", "the panel schedule for LP-2A",
    "the fire stopping details at rated walls", "the door hardware groups",
    "the roof drain locations", "the elevator pit waterproofing",
    "the concrete mix design for the elevated decks", "the three-week lookahead",
    "the crane pick plan for the rooftop units", "the pour sequence for level 2",
)
_TAILS = (
    "before the next OAC meeting.", "per the latest ASI.", "with the design team.",
    "and will respond within five working days.", "pending the revised shop drawings.",
    "as shown on the current set.", "subject to field verification.", "at no cost to the owner.",
)


def _sentences(rng: _Rng, count: int) -> list[str]:
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"{rng.choice(_TAILS)}"
        for _ in range(count)
    ]


# --- plain text ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _text_bytes(seed: str, body: str | None) -> bytes:
    if body is None:
        rng = _Rng("text:" + seed)
        body = seed + "\n\n" + "\n".join(_sentences(rng, 6 + rng.below(10))) + "\n"
    return body.encode("utf-8")


def text(seed: str, body: str | None = None) -> GeneratedContent:
    """UTF-8 text: ``body`` as given, or a few generated lines of site notes."""
    return _from_builder(
        "text", "text/plain", lambda: _text_bytes(seed, body), seed, body
    )


def empty() -> GeneratedContent:
    """Zero bytes (the iterator yields nothing at all)."""
    return GeneratedContent("empty", "application/octet-stream", _key("empty"),
                            lambda: 0, lambda: iter(()))


def random_bytes(seed: str, size: int, header: bytes = b"") -> GeneratedContent:
    """``size`` bytes: ``header`` then a pseudo-random stream, in chunks of at most 1 MiB.

    Nothing is held: each chunk is computed when asked for, so any size streams.
    """
    if size < len(header):
        raise ValueError("size is smaller than the header")
    if len(header) > CHUNK_SIZE:
        raise ValueError("header is larger than a chunk")

    def chunks() -> Iterator[bytes]:
        if header:
            yield header
        yield from _random_chunks("random:" + seed, size - len(header))

    return GeneratedContent("random", "application/octet-stream",
                            _key("random", seed, size, header), lambda: size, chunks)


# --- PDF -------------------------------------------------------------------------------------


def _pdf_text(value: str) -> bytes:
    # The standard Type1 fonts speak WinAnsi; characters outside it print as '?'.
    raw = value.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _pdf_unicode(value: str) -> bytes:
    # Document-info strings may be UTF-16BE with a BOM, which keeps any name intact.
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


@functools.lru_cache(maxsize=256)
def _pdf_parts(seed: str, title: str, lines: tuple[str, ...], pad: int) -> tuple[bytes, bytes]:
    """(everything before the padding stream's data, everything after it)."""
    content = io.BytesIO()
    # A sheet border and title block, like a drawing set page.
    content.write(b"0.5 w 36 36 540 720 re S 36 96 540 0 m 576 96 l S\n")
    content.write(b"BT /F1 18 Tf 54 730 Td " + _pdf_text(title) + b" Tj ET\n")
    content.write(b"BT /F1 10 Tf 14 TL 54 700 Td\n")
    for line in lines[:44]:
        content.write(_pdf_text(line) + b" Tj T*\n")
    content.write(b"ET\n")
    content.write(b"BT /F1 8 Tf 54 60 Td " + _pdf_text(f"Ref {seed}") + b" Tj ET\n")
    stream = content.getvalue()

    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title " + _pdf_unicode(title) + b" /Producer (procorefs emulator) "
        b"/CreationDate (D:20240102030405Z) >>",
    ]
    out = io.BytesIO()
    # The binary comment line tells transfer tools the file is binary, as the spec advises.
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    if pad:
        # An unreferenced stream object: legal, ignored by viewers, and it gives the file a
        # realistic size without holding the bytes.
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n<< /Length %d >>\nstream\n" % (len(objects) + 1, pad))
    prefix = out.getvalue()
    tail = io.BytesIO()
    if pad:
        tail.write(b"\nendstream\nendobj\n")
    xref_at = len(prefix) + pad + tail.tell()
    count = len(offsets) + 1
    tail.write(b"xref\n0 %d\n" % count)
    tail.write(b"0000000000 65535 f \n")
    for offset in offsets:
        tail.write(b"%010d 00000 n \n" % offset)
    doc_id = hashlib.md5(_key("pdf", seed, title, lines, pad).encode()).hexdigest().encode()
    tail.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R /ID [<%s> <%s>] >>\n"
        % (count, doc_id, doc_id)
    )
    tail.write(b"startxref\n%d\n%%%%EOF\n" % xref_at)
    return prefix, tail.getvalue()


def pdf(
    seed: str,
    title: str | None = None,
    lines: Sequence[str] | None = None,
    pad_to: int = 0,
) -> GeneratedContent:
    """A one-page PDF 1.4 with a title and lines of text, and a correct xref table.

    ``pad_to`` grows the file to at least that many bytes with an unreferenced stream object
    (streamed, so a "big PDF" costs no memory).
    """
    title = title if title is not None else seed
    if lines is None:
        rng = _Rng("pdf:" + seed)
        lines = _sentences(rng, 8 + rng.below(12))
    line_tuple = tuple(lines)
    base_prefix, base_tail = _pdf_parts(seed, title, line_tuple, 0)
    pad = 0
    if pad_to > len(base_prefix) + len(base_tail):
        # The padding object's own wrapper and xref entry take about 80 bytes.
        pad = max(1, pad_to - len(base_prefix) - len(base_tail) - 80)

        def total(candidate: int) -> int:
            prefix, tail = _pdf_parts(seed, title, line_tuple, candidate)
            return len(prefix) + candidate + len(tail)

        # The wrapper grows by a byte whenever /Length gains a digit, so aim, then step.
        while total(pad) < pad_to:
            pad += pad_to - total(pad)
        while pad > 1 and total(pad - 1) >= pad_to:
            pad -= 1
    key = _key("pdf", seed, title, line_tuple, pad)

    def parts() -> tuple[bytes, bytes]:
        return _pdf_parts(seed, title, line_tuple, pad)

    def chunks() -> Iterator[bytes]:
        prefix, tail = parts()
        if not pad:
            yield prefix + tail
            return
        yield prefix
        yield from _random_chunks("pdf-pad:" + seed, pad)
        yield tail

    def size() -> int:
        prefix, tail = parts()
        return len(prefix) + pad + len(tail)

    return GeneratedContent("pdf", "application/pdf", key, size, chunks)


# --- Office Open XML -------------------------------------------------------------------------

_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT_CORE = "application/vnd.openxmlformats-package.core-properties+xml"
_CT_APP = "application/vnd.openxmlformats-officedocument.extended-properties+xml"


def _zip(parts: Sequence[tuple[str, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, body in parts:
            # Fixed timestamp and creator system, so the bytes depend on the inputs only.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, body.encode("utf-8"))
    return buf.getvalue()


def _content_types(overrides: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<Override PartName="{part}" ContentType="{ctype}"/>' for part, ctype in overrides
    )
    return (
        _XML_DECL
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + items
        + "</Types>"
    )


def _rels(relations: Sequence[tuple[str, str, str]]) -> str:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{rtype}" Target="{target}"/>'
        for rid, rtype, target in relations
    )
    return _XML_DECL + f'<Relationships xmlns="{_NS_REL}">' + items + "</Relationships>"


def _package_rels(main_part: str) -> str:
    return _rels(
        [
            ("rId1", f"{_NS_OFFICE_REL}/officeDocument", main_part),
            ("rId2", f"{_NS_REL}/metadata/core-properties", "docProps/core.xml"),
            ("rId3", f"{_NS_OFFICE_REL}/extended-properties", "docProps/app.xml"),
        ]
    )


def _core_props(title: str) -> str:
    return (
        _XML_DECL
        + '<cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title>"
        "<dc:creator>procorefs emulator</dc:creator>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-01-02T03:04:05Z</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">2024-01-02T03:04:05Z</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _app_props(application: str) -> str:
    return (
        _XML_DECL
        + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties">'
        f"<Application>{escape(application)}</Application></Properties>"
    )


_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

_DOCX_STYLES = (
    _XML_DECL
    + f'<w:styles xmlns:w="{_W_NS}">'
    "<w:docDefaults><w:rPrDefault><w:rPr>"
    '<w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri" w:cs="Calibri"/>'
    '<w:sz w:val="22"/></w:rPr></w:rPrDefault>'
    '<w:pPrDefault><w:pPr><w:spacing w:after="160"/></w:pPr></w:pPrDefault></w:docDefaults>'
    '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
    "</w:style>"
    '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/>'
    '<w:basedOn w:val="Normal"/><w:rPr><w:b/><w:sz w:val="40"/></w:rPr></w:style>'
    '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
    '<w:basedOn w:val="Normal"/><w:rPr><w:b/><w:sz w:val="28"/></w:rPr></w:style>'
    "</w:styles>"
)


def _w_paragraph(value: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{props}<w:r><w:t xml:space="preserve">{escape(value)}</w:t></w:r></w:p>'


@functools.lru_cache(maxsize=256)
def _docx_bytes(seed: str, title: str, paragraphs: tuple[str, ...]) -> bytes:
    body = _w_paragraph(title, "Title")
    for value in paragraphs:
        if value.startswith("# "):
            body += _w_paragraph(value[2:], "Heading1")
        else:
            body += _w_paragraph(value)
    document = (
        _XML_DECL
        + f'<w:document xmlns:w="{_W_NS}"><w:body>'
        + body
        + '<w:sectPr><w:pgSz w:w="12240" w:h="15840"/><w:pgMar w:top="1440" w:right="1440" '
        'w:bottom="1440" w:left="1440" w:header="720" w:footer="720" w:gutter="0"/>'
        "</w:sectPr></w:body></w:document>"
    )
    return _zip(
        [
            (
                "[Content_Types].xml",
                _content_types(
                    [
                        ("/word/document.xml", "application/vnd.openxmlformats-officedocument"
                         ".wordprocessingml.document.main+xml"),
                        ("/word/styles.xml", "application/vnd.openxmlformats-officedocument"
                         ".wordprocessingml.styles+xml"),
                        ("/docProps/core.xml", _CT_CORE),
                        ("/docProps/app.xml", _CT_APP),
                    ]
                ),
            ),
            ("_rels/.rels", _package_rels("word/document.xml")),
            ("word/document.xml", document),
            ("word/_rels/document.xml.rels",
             _rels([("rId1", f"{_NS_OFFICE_REL}/styles", "styles.xml")])),
            ("word/styles.xml", _DOCX_STYLES),
            ("docProps/core.xml", _core_props(title)),
            ("docProps/app.xml", _app_props("Microsoft Office Word")),
        ]
    )


def docx(
    seed: str, title: str | None = None, paragraphs: Sequence[str] | None = None
) -> GeneratedContent:
    """A Word document (Office Open XML). Paragraphs starting with "# " become headings."""
    title = title if title is not None else seed
    if paragraphs is None:
        rng = _Rng("docx:" + seed)
        generated: list[str] = []
        for number in range(1, 3 + rng.below(4)):
            generated.append(f"# {number}. {rng.choice(_OBJECTS).capitalize()}")
            generated.extend(_sentences(rng, 2 + rng.below(4)))
        paragraphs = generated
    values = tuple(paragraphs)
    return _from_builder(
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        lambda: _docx_bytes(seed, title, values),
        seed, title, values,
    )


_S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

_XLSX_STYLES = (
    _XML_DECL
    + f'<styleSheet xmlns="{_S_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    "</cellStyleXfs>"
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord("A") + rem) + name
    return name


def _sheet_name(title: str) -> str:
    # Excel's sheet-name rules: at most 31 characters, none of []:*?/\ .
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip()
    return (cleaned or "Sheet1")[:31]


@functools.lru_cache(maxsize=256)
def _xlsx_bytes(seed: str, title: str, rows: tuple[tuple[Cell, ...], ...]) -> bytes:
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{_column(c)}{r}"
            style = ' s="1"' if r == 1 else ""
            if isinstance(value, str):
                cells.append(
                    f'<c r="{ref}" t="inlineStr"{style}><is><t xml:space="preserve">'
                    f"{escape(value)}</t></is></c>"
                )
            else:
                cells.append(f'<c r="{ref}"{style}><v>{value!r}</v></c>')
        xml_rows.append(f'<row r="{r}">' + "".join(cells) + "</row>")
    sheet = (
        _XML_DECL
        + f'<worksheet xmlns="{_S_NS}"><sheetData>'
        + "".join(xml_rows)
        + "</sheetData></worksheet>"
    )
    workbook = (
        _XML_DECL
        + f'<workbook xmlns="{_S_NS}" xmlns:r="{_NS_OFFICE_REL}"><sheets>'
        f'<sheet name={quoteattr(_sheet_name(title))} sheetId="1" r:id="rId1"/>'
        "</sheets></workbook>"
    )
    return _zip(
        [
            (
                "[Content_Types].xml",
                _content_types(
                    [
                        ("/xl/workbook.xml", "application/vnd.openxmlformats-officedocument"
                         ".spreadsheetml.sheet.main+xml"),
                        ("/xl/worksheets/sheet1.xml", "application/vnd.openxmlformats-"
                         "officedocument.spreadsheetml.worksheet+xml"),
                        ("/xl/styles.xml", "application/vnd.openxmlformats-officedocument"
                         ".spreadsheetml.styles+xml"),
                        ("/docProps/core.xml", _CT_CORE),
                        ("/docProps/app.xml", _CT_APP),
                    ]
                ),
            ),
            ("_rels/.rels", _package_rels("xl/workbook.xml")),
            ("xl/workbook.xml", workbook),
            (
                "xl/_rels/workbook.xml.rels",
                _rels(
                    [
                        ("rId1", f"{_NS_OFFICE_REL}/worksheet", "worksheets/sheet1.xml"),
                        ("rId2", f"{_NS_OFFICE_REL}/styles", "styles.xml"),
                    ]
                ),
            ),
            ("xl/worksheets/sheet1.xml", sheet),
            ("xl/styles.xml", _XLSX_STYLES),
            ("docProps/core.xml", _core_props(title)),
            ("docProps/app.xml", _app_props("Microsoft Excel")),
        ]
    )


_COST_CODES = (
    ("01-500", "Temporary Facilities"), ("03-300", "Cast-in-Place Concrete"),
    ("04-200", "Unit Masonry"), ("05-120", "Structural Steel"),
    ("06-100", "Rough Carpentry"), ("07-500", "Membrane Roofing"),
    ("08-410", "Storefronts"), ("09-290", "Gypsum Board"), ("09-650", "Resilient Flooring"),
    ("22-100", "Plumbing Piping"), ("23-300", "HVAC Air Distribution"),
    ("26-050", "Electrical Wiring"), ("31-200", "Earth Moving"), ("32-120", "Asphalt Paving"),
)


def xlsx(
    seed: str, title: str | None = None, rows: Sequence[Sequence[Cell]] | None = None
) -> GeneratedContent:
    """An Excel workbook with one sheet; the first row is bold. Default: a cost table."""
    title = title if title is not None else seed
    if rows is None:
        rng = _Rng("xlsx:" + seed)
        generated: list[tuple[Cell, ...]] = [
            ("Cost Code", "Description", "Original Budget", "Approved Changes", "Committed")
        ]
        for code, description in _COST_CODES[: 6 + rng.below(len(_COST_CODES) - 5)]:
            budget = round(10000 + rng.unit() * 900000, 2)
            changes = round((rng.unit() - 0.3) * budget * 0.1, 2)
            generated.append((code, description, budget, changes, round(budget * 0.8, 2)))
        rows = generated
    values = tuple(tuple(row) for row in rows)
    return _from_builder(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        lambda: _xlsx_bytes(seed, title, values),
        seed, title, values,
    )


# --- DWG-like --------------------------------------------------------------------------------


def _dwg_header(seed: str) -> bytes:
    """The first 0x80 bytes of an AutoCAD 2018 (AC1032) file, then the 0x6C-byte encrypted
    file-header block, laid out as the Open Design Alliance spec describes them."""
    head = bytearray(0x80)
    head[0:6] = b"AC1032"
    # 0x06..0x0A: five zero bytes; 0x0B maintenance release; 0x0C is 0 or 1 or 3.
    head[0x0B] = 0x00
    head[0x0C] = 0x01
    struct.pack_into("<I", head, 0x0D, 0x000001C0)  # preview image address
    head[0x11] = 0x21  # writer's dwg version
    head[0x12] = 0x00  # writer's maintenance release
    struct.pack_into("<H", head, 0x13, 30)  # code page: ANSI_1252
    struct.pack_into("<I", head, 0x18, 0)  # security flags: none
    struct.pack_into("<I", head, 0x20, 0x00000500)  # summary info address
    struct.pack_into("<I", head, 0x24, 0)  # no VBA project
    struct.pack_into("<I", head, 0x28, 0x00000080)
    # The real block is XOR-scrambled with a fixed sequence; ours is deterministic noise.
    return bytes(head) + _stream_block("dwg-header:" + seed, 0, 0x6C)


def dwg(seed: str, size: int = 96 * 1024) -> GeneratedContent:
    """A DWG-like binary: a plausible AutoCAD 2018 header padded to ``size`` bytes."""
    header = _dwg_header(seed)
    if size < len(header):
        raise ValueError(f"a DWG-like file needs at least {len(header)} bytes")

    def chunks() -> Iterator[bytes]:
        yield header
        yield from _random_chunks("dwg:" + seed, size - len(header))

    return GeneratedContent("dwg", "application/acad", _key("dwg", seed, size),
                            lambda: size, chunks)


# --- LAS point cloud -------------------------------------------------------------------------

LAS_HEADER_SIZE = 227
LAS_POINT_SIZE = 20  # point data record format 0


def _las_header(seed: str, points: int) -> bytes:
    head = bytearray(LAS_HEADER_SIZE)
    head[0:4] = b"LASF"
    head[24] = 1  # version 1.2
    head[25] = 2
    head[26:58] = b"procorefs emulator".ljust(32, b"\0")
    head[58:90] = b"procorefs samples".ljust(32, b"\0")
    struct.pack_into("<HH", head, 90, 74, 2024)  # creation day of year, year
    struct.pack_into("<HI", head, 94, LAS_HEADER_SIZE, LAS_HEADER_SIZE)  # header, data offset
    struct.pack_into("<IBHI", head, 100, 0, 0, LAS_POINT_SIZE, points)
    struct.pack_into("<5I", head, 111, points, 0, 0, 0, 0)  # points by return
    struct.pack_into("<3d", head, 131, 0.001, 0.001, 0.001)  # scale
    base = 1000.0 + _Rng("las:" + seed).below(9000)
    struct.pack_into("<3d", head, 155, base, base, 100.0)  # offset
    struct.pack_into("<6d", head, 179, base + 2147.0, base - 2147.0, base + 2147.0,
                     base - 2147.0, 2247.0, -2047.0)  # max x, min x, max y, min y, max z, min z
    return bytes(head)


def las(seed: str, points: int) -> GeneratedContent:
    """A LAS 1.2 point cloud (format 0): a valid header and ``points`` 20-byte records of
    deterministic noise. Size is 227 + 20 * points bytes; streamed."""
    header = _las_header(seed, points)
    size = LAS_HEADER_SIZE + LAS_POINT_SIZE * points

    def chunks() -> Iterator[bytes]:
        yield header
        yield from _random_chunks("las:" + seed, size - LAS_HEADER_SIZE)

    return GeneratedContent("las", "application/vnd.las", _key("las", seed, points),
                            lambda: size, chunks)


# --- JPEG: a tiny baseline encoder (ITU-T T.81) ----------------------------------------------

_ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)

# Annex K.1 example quantisation tables, in natural (row-major) order.
_Q_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_Q_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
)

# Annex K.3 standard Huffman tables: (code counts by length 1..16, symbols).
HUFFMAN_DC_LUMA = (
    (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
HUFFMAN_DC_CHROMA = (
    (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
HUFFMAN_AC_LUMA = (
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    (
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
        0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
        0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
        0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
        0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57,
        0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
        0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92,
        0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
        0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
        0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
        0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2,
        0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ),
)
HUFFMAN_AC_CHROMA = (
    (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77),
    (
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
        0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
        0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25,
        0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38,
        0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56,
        0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
        0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
        0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
        0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
        0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2,
        0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ),
)

HuffmanSpec = tuple[tuple[int, ...], tuple[int, ...]]


def huffman_codes(spec: HuffmanSpec) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), the canonical codes of Annex C."""
    counts, symbols = spec
    table: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            table[symbols[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return table


def _quant_table(base: Sequence[int], quality: int) -> tuple[int, ...]:
    # libjpeg's quality scaling, so "quality 85" means what people expect.
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(min(255, max(1, (v * scale + 50) // 100)) for v in base)


_DCT = tuple(
    tuple(
        (math.sqrt(0.125) if u == 0 else 0.5) * math.cos((2 * x + 1) * u * math.pi / 16)
        for x in range(8)
    )
    for u in range(8)
)


def _fdct(block: list[float]) -> list[float]:
    """Separable 8x8 forward DCT-II (row-major in, row-major out)."""
    rows: list[float] = []
    for y in range(0, 64, 8):
        row = block[y : y + 8]
        rows.extend([sum(map(operator.mul, c, row)) for c in _DCT])
    out = [0.0] * 64
    for u in range(8):
        column = rows[u::8]
        for v, c in enumerate(_DCT):
            out[v * 8 + u] = sum(map(operator.mul, c, column))
    return out


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self._acc = 0
        self._bits = 0

    def write(self, value: int, length: int) -> None:
        self._acc = (self._acc << length) | (value & ((1 << length) - 1))
        self._bits += length
        while self._bits >= 8:
            self._bits -= 8
            byte = (self._acc >> self._bits) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)  # byte stuffing, so data never looks like a marker
        self._acc &= (1 << self._bits) - 1

    def flush(self) -> bytes:
        if self._bits:
            self.write((1 << (8 - self._bits)) - 1, 8 - self._bits)  # pad with 1-bits
        return bytes(self.out)


def _magnitude(value: int) -> tuple[int, int]:
    """(category, the bits that follow it) for a DC difference or AC coefficient."""
    size = abs(value).bit_length()
    bits = value if value >= 0 else value + (1 << size) - 1
    return size, bits


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _scene(seed: str, width: int, height: int) -> list[tuple[float, float, float]]:
    """RGB pixels of a simple site photo: sky gradient, a building block, ground."""
    rng = _Rng("jpeg:" + seed)
    horizon = height * (0.45 + 0.2 * rng.unit())
    left = width * (0.15 + 0.3 * rng.unit())
    right = left + width * (0.25 + 0.25 * rng.unit())
    top = horizon * (0.2 + 0.4 * rng.unit())
    tint = rng.unit()
    pixels: list[tuple[float, float, float]] = []
    for y in range(height):
        for x in range(width):
            if left <= x < right and top <= y < horizon:
                shade = 150 + 40 * ((x // 6 + y // 8) % 2)  # floors and window bays
                pixels.append((shade, shade * (0.9 + 0.1 * tint), shade * 0.85))
            elif y < horizon:
                t = y / max(1.0, horizon)
                pixels.append((90 + 80 * t, 140 + 70 * t, 230 - 20 * t * tint))
            else:
                t = (y - horizon) / max(1.0, height - horizon)
                pixels.append((120 - 40 * t + 30 * tint, 100 - 30 * t, 70 - 20 * t))
    return pixels


@functools.lru_cache(maxsize=64)
def _jpeg_bytes(seed: str, width: int, height: int, quality: int) -> bytes:
    rgb = _scene(seed, width, height)
    planes: list[list[float]] = [[], [], []]
    for r, g, b in rgb:
        planes[0].append(0.299 * r + 0.587 * g + 0.114 * b)
        planes[1].append(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
        planes[2].append(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    quant = (_quant_table(_Q_LUMA, quality), _quant_table(_Q_CHROMA, quality))
    dc_codes = (huffman_codes(HUFFMAN_DC_LUMA), huffman_codes(HUFFMAN_DC_CHROMA))
    ac_codes = (huffman_codes(HUFFMAN_AC_LUMA), huffman_codes(HUFFMAN_AC_CHROMA))

    writer = _BitWriter()
    previous_dc = [0, 0, 0]
    # 4:4:4 sampling, one 8x8 block per component per MCU, interleaved Y Cb Cr.
    for by in range(0, height, 8):
        for bx in range(0, width, 8):
            for comp in range(3):
                table = 0 if comp == 0 else 1
                plane = planes[comp]
                block = [
                    # Edge blocks repeat the last row/column, as encoders usually pad.
                    plane[min(by + j, height - 1) * width + min(bx + i, width - 1)] - 128.0
                    for j in range(8)
                    for i in range(8)
                ]
                coeffs = _fdct(block)
                q = quant[table]
                # Baseline Huffman tables stop at magnitude category 10 for AC values.
                zz = [
                    max(-1023, min(1023, round(coeffs[_ZIGZAG[k]] / q[_ZIGZAG[k]])))
                    for k in range(64)
                ]
                diff = zz[0] - previous_dc[comp]
                previous_dc[comp] = zz[0]
                size, bits = _magnitude(diff)
                code, length = dc_codes[table][size]
                writer.write(code, length)
                if size:
                    writer.write(bits, size)
                run = 0
                for k in range(1, 64):
                    value = zz[k]
                    if value == 0:
                        run += 1
                        continue
                    while run > 15:
                        code, length = ac_codes[table][0xF0]
                        writer.write(code, length)
                        run -= 16
                    size, bits = _magnitude(value)
                    code, length = ac_codes[table][(run << 4) | size]
                    writer.write(code, length)
                    writer.write(bits, size)
                    run = 0
                if run:
                    code, length = ac_codes[table][0x00]
                    writer.write(code, length)
    scan = writer.flush()

    out = io.BytesIO()
    out.write(b"\xff\xd8")  # SOI
    out.write(_segment(0xFFE0, b"JFIF\0" + struct.pack(">BBBHHBB", 1, 1, 1, 72, 72, 0, 0)))
    for table_id, table_values in enumerate(quant):
        out.write(_segment(0xFFDB, bytes([table_id]) + bytes(table_values[z] for z in _ZIGZAG)))
    sof = struct.pack(">BHHB", 8, height, width, 3)
    sof += bytes([1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1])
    out.write(_segment(0xFFC0, sof))
    for table_class, table_id, spec in (
        (0, 0, HUFFMAN_DC_LUMA), (1, 0, HUFFMAN_AC_LUMA),
        (0, 1, HUFFMAN_DC_CHROMA), (1, 1, HUFFMAN_AC_CHROMA),
    ):
        counts, symbols = spec
        out.write(_segment(0xFFC4, bytes([table_class << 4 | table_id, *counts, *symbols])))
    sos = bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
    out.write(_segment(0xFFDA, sos))
    out.write(scan)
    out.write(b"\xff\xd9")  # EOI
    return out.getvalue()


def jpeg(seed: str, width: int = 96, height: int = 64, quality: int = 85) -> GeneratedContent:
    """A baseline JFIF JPEG of a simple generated site photo. Keep images small: the encoder
    is pure Python (about 0.05 s for 96x64, 0.1 s for 128x96)."""
    if not (1 <= width <= 1024 and 1 <= height <= 1024):
        raise ValueError("jpeg() makes small images only (1..1024 pixels a side)")
    if not 1 <= quality <= 100:
        raise ValueError("quality is 1..100")
    return _from_builder(
        "jpeg", "image/jpeg", lambda: _jpeg_bytes(seed, width, height, quality),
        seed, width, height, quality,
    )


def clear_caches() -> None:
    """Forget memoised small-file bytes (tests use it to prove bytes are rebuilt alike)."""
    for builder in (_text_bytes, _pdf_parts, _docx_bytes, _xlsx_bytes, _jpeg_bytes):
        builder.cache_clear()
