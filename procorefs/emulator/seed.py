"""The emulator's seeds: who exists and what Documents hold at start or after a reset.

Owns the well-known identities every test and ``make demo`` rely on (the demo user, the other
user who makes remote edits, the demo OAuth app, the service app, the company and its
projects) and the seeds built from them: ``empty_seed`` (identities, no documents),
``demo_seed`` (a realistic construction company) and ``large_seed`` (a sized tree for
benchmarks), plus ``build_seed`` which picks one by name. Content comes from ``samples`` and is
lazy, so building a seed costs next to nothing until the store reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from procorefs.emulator import samples
from procorefs.emulator.seedtypes import (
    Content,
    Seed,
    SeedApp,
    SeedCompany,
    SeedFile,
    SeedFolder,
    SeedProject,
    SeedUser,
    SeedVersion,
)

# --- well-known identities (ids shaped like Procore's: users and companies ~7 digits,
# projects ~6 digits) ---------------------------------------------------------------------

DEMO_USER_ID = 7310284
DEMO_USER_LOGIN = "demo@procorefs.test"
DEMO_USER_NAME = "Dana Demo"

# Makes remote edits, new versions and check-outs "as another user" in tests.
OTHER_USER_ID = 7310291
OTHER_USER_LOGIN = "alex.other@procorefs.test"
OTHER_USER_NAME = "Alex Other"

# A third person, so version histories show more than two authors.
PM_USER_ID = 7310307
PM_USER_LOGIN = "pat.manager@procorefs.test"
PM_USER_NAME = "Pat Manager"

# The user a client-credentials (DMSA-style) token acts as.
SERVICE_USER_ID = 7310322
SERVICE_USER_LOGIN = "service-account@procorefs.test"
SERVICE_USER_NAME = "procorefs Service Account"

# The demo user administers the company: sees every project, as a Procore company admin does.
COMPANY_ADMIN_USER_IDS: tuple[int, ...] = (DEMO_USER_ID,)

DEMO_CLIENT_ID = "procorefs-demo"
DEMO_CLIENT_SECRET = "procorefs-demo-secret-8f3c2a91d7e64b05"
DEMO_REDIRECT_URIS: tuple[str, ...] = (
    "http://localhost:8765/callback",
    "http://127.0.0.1:8765/callback",
    "urn:ietf:wg:oauth:2.0:oob",
)

SERVICE_CLIENT_ID = "procorefs-service"
SERVICE_CLIENT_SECRET = "procorefs-service-secret-2b7e91c4a05f3d68"

COMPANY_ID = 5120437
COMPANY_NAME = "Summit Ridge Builders"

PROJECT_ID = 318842
PROJECT_NAME = "Harbor View Medical Office Building"
PROJECT_NUMBER = "2417"

SECOND_PROJECT_ID = 321576
SECOND_PROJECT_NAME = "Cedar Creek Elementary School Addition"
SECOND_PROJECT_NUMBER = "2431"

SEED_NAMES: tuple[str, ...] = ("empty", "demo", "large")


def _users() -> tuple[SeedUser, ...]:
    return (
        SeedUser(DEMO_USER_ID, DEMO_USER_LOGIN, DEMO_USER_NAME),
        SeedUser(OTHER_USER_ID, OTHER_USER_LOGIN, OTHER_USER_NAME),
        SeedUser(PM_USER_ID, PM_USER_LOGIN, PM_USER_NAME),
        SeedUser(SERVICE_USER_ID, SERVICE_USER_LOGIN, SERVICE_USER_NAME),
    )


def _apps() -> tuple[SeedApp, ...]:
    return (
        SeedApp(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS),
        # Client-credentials apps have no redirect URI; their tokens act as the service user.
        SeedApp(SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET, (), service_user_id=SERVICE_USER_ID),
    )


def _members() -> tuple[int, ...]:
    return (DEMO_USER_ID, OTHER_USER_ID, PM_USER_ID, SERVICE_USER_ID)


def _extra(seed_name: str) -> dict[str, str]:
    # SeedUser has no admin flag; the store may read it from here.
    return {
        "seed": seed_name,
        "company_admin_user_ids": ",".join(str(i) for i in COMPANY_ADMIN_USER_IDS),
    }


def _project(documents: SeedFolder) -> SeedProject:
    return SeedProject(
        id=PROJECT_ID,
        name=PROJECT_NAME,
        display_name=f"{PROJECT_NUMBER} - {PROJECT_NAME}",
        project_number=PROJECT_NUMBER,
        documents=documents,
    )


def empty_seed() -> Seed:
    """The identities, one company with one project, and empty Documents trees."""
    company = SeedCompany(
        id=COMPANY_ID,
        name=COMPANY_NAME,
        projects=(_project(SeedFolder(PROJECT_NAME)),),
        documents=SeedFolder(COMPANY_NAME),
        member_user_ids=_members(),
    )
    return Seed(
        name="empty",
        users=_users(),
        apps=_apps(),
        companies=(company,),
        demo_user_id=DEMO_USER_ID,
        extra=_extra("empty"),
    )


# --- the demo seed ---------------------------------------------------------------------------

DAY = 86400.0
HOUR = 3600.0

# Notable places in the demo tree, as "/"-joined paths relative to the Documents root of
# PROJECT_ID (or of the company, for COMPANY_*), so tests can find them by name.
CHECKED_OUT_PATH = "10 CAD/A-101 First Floor Plan.dwg"  # checked out by OTHER_USER_ID
CHECKED_OUT_FOR_SECONDS = 4 * HOUR
BIG_FILE_PATH = "11 Survey/Site Survey Point Cloud.las"
BIG_FILE_POINTS = 3_407_873
BIG_FILE_SIZE = samples.LAS_HEADER_SIZE + samples.LAS_POINT_SIZE * BIG_FILE_POINTS  # 65 MiB+247
EMPTY_FILE_PATH = "12 Closeout/Attic Stock Log.txt"
PRIVATE_FOLDER_PATH = "05 Contracts"
PRIVATE_FILE_PATH = "09 Budget/Owner Budget - Confidential.xlsx"
READ_ONLY_FILE_PATH = "02 Specifications/00 01 10 - Table of Contents.pdf"
DELETED_FILE_PATH = "04 RFIs/RFI 007 - Duplicate (void).pdf"
DELETED_FOLDER_PATH = "01 Drawings/Landscape (superseded)"
LONG_PATH = (
    "13 Archive"
    "/Superseded Issued-for-Permit Drawing Package 01 - January 2024 (Replaced by IFC Set)"
    "/Architectural, Interior Design and Life Safety Supersession Set Including Addenda 1-4"
    "/Level 2 Medical Office Suites - Tenant Improvement Coordination Drawings"
    "/A-121 Enlarged Plan - Suite 210 Exam Rooms and Nurse Station - Rev 4 (Superseded).pdf"
)
FORBIDDEN_NAME_PATHS: tuple[str, ...] = (
    "04 RFIs/RFI 012: Beam size?.pdf",
    '10 CAD/Detail "A" | Section.dwg',
    "03 Submittals/08 71 00-002 Door Hardware <Group 3> *DRAFT*.docx",
)
NON_ASCII_PATHS: tuple[str, ...] = (
    "07 Meeting Minutes/Café Tenant Fit-Out Kickoff.docx",
    "03 Submittals/Prüfbericht Betondruckfestigkeit - Lab Report.pdf",
    "01 Drawings/Interiors - Diseño Interior/I-101 Finish Plan.pdf",
    "06 Photos/現場写真 - Lobby Framing.jpg",
    "06 Photos/Topping Out 🎉.jpg",
)
MULTI_VERSION_PATHS: tuple[str, ...] = (
    "01 Drawings/Architectural/A-101 First Floor Plan.pdf",
    "01 Drawings/Structural/S-101 Foundation Plan.pdf",
    "03 Submittals/05 12 00-001 Structural Steel Shop Drawings.pdf",
    "07 Meeting Minutes/OAC Meeting 014 - 2024-03-12.docx",
    "08 Schedules/3-Week Lookahead.xlsx",
    CHECKED_OUT_PATH,
)
COMPANY_MULTI_VERSION_PATH = "Safety/Site Safety Plan.pdf"
COMPANY_PRIVATE_FOLDER_PATH = "Safety/Incident Reports (Confidential)"
COMPANY_DELETED_FILE_PATH = "Templates/RFI Template (2019).docx"

Entry = SeedFolder | SeedFile


def walk(folder: SeedFolder, prefix: str = "") -> Iterator[tuple[str, Entry]]:
    """Every entry under ``folder`` (depth first, parents before children) with its
    "/"-joined path relative to ``folder``."""
    for child in folder.children:
        path = f"{prefix}/{child.name}" if prefix else child.name
        yield path, child
        if isinstance(child, SeedFolder):
            yield from walk(child, path)


def find(folder: SeedFolder, path: str) -> Entry:
    """The entry at ``path`` (relative, "/"-joined) under ``folder``; KeyError if none."""
    node: Entry = folder
    for part in path.split("/"):
        if not isinstance(node, SeedFolder):
            raise KeyError(path)
        for child in node.children:
            if child.name == part:
                node = child
                break
        else:
            raise KeyError(path)
    return node


def _v(
    content: Content, by: int = DEMO_USER_ID, days: float = 30.0, notes: str | None = None
) -> SeedVersion:
    return SeedVersion(content=content, created_by=by, notes=notes, age_seconds=days * DAY)


def _file(
    name: str,
    content: Content,
    by: int = DEMO_USER_ID,
    days: float = 30.0,
    notes: str | None = None,
    *,
    private: bool = False,
    deleted: bool = False,
    read_only: bool = False,
) -> SeedFile:
    return SeedFile(name=name, versions=(_v(content, by, days, notes),), private=private,
                    deleted=deleted, read_only=read_only)


def _folder(
    name: str, *children: Entry, days: float = 200.0, private: bool = False,
    deleted: bool = False,
) -> SeedFolder:
    return SeedFolder(name=name, children=children, age_seconds=days * DAY, private=private,
                      deleted=deleted)


def _drawing(
    project: str, sheet: str, title: str, rev: int = 0, size_kib: int = 240
) -> samples.GeneratedContent:
    lines = [
        f"Project: {project}",
        f"Sheet: {sheet}    Revision: {rev}",
        f"Title: {title}",
        "Drawn: JS    Checked: MR    Scale: 1/8\" = 1'-0\"",
        "Issued for Construction" if rev else "Issued for Permit",
        "General notes: verify all dimensions in the field before fabrication.",
    ]
    return samples.pdf(f"{project}|{sheet}|rev{rev}", f"{sheet} {title}", lines,
                       pad_to=size_kib * 1024)


def _spec(project: str, section: str, title: str) -> samples.GeneratedContent:
    lines = [
        f"SECTION {section} - {title.upper()}",
        "PART 1 - GENERAL",
        "1.1 RELATED DOCUMENTS: Drawings and general provisions of the Contract apply.",
        "1.2 SUBMITTALS: Product data, shop drawings and samples as specified.",
        "PART 2 - PRODUCTS",
        "PART 3 - EXECUTION",
        "END OF SECTION",
    ]
    return samples.pdf(f"{project}|spec|{section}", f"{section} - {title}", lines,
                       pad_to=60 * 1024)


def _project_one() -> SeedFolder:
    p = PROJECT_NAME

    def dwg_pdf(sheet: str, title: str, rev: int = 0, size_kib: int = 240) -> SeedFile:
        return _file(f"{sheet} {title}.pdf", _drawing(p, sheet, title, rev, size_kib),
                     PM_USER_ID, 150.0)

    drawings = _folder(
        "01 Drawings",
        _folder(
            "Architectural",
            dwg_pdf("A-001", "Cover Sheet and Sheet Index", size_kib=120),
            SeedFile(
                "A-101 First Floor Plan.pdf",
                (
                    _v(_drawing(p, "A-101", "First Floor Plan", 0, 380), PM_USER_ID, 150.0,
                       "Rev 0 - Issued for Permit"),
                    _v(_drawing(p, "A-101", "First Floor Plan", 1, 395), OTHER_USER_ID, 64.0,
                       "Rev 1 - ASI 002 corridor widths"),
                    _v(_drawing(p, "A-101", "First Floor Plan", 2, 410), DEMO_USER_ID, 6.0,
                       "Rev 2 - Bulletin 3, door tags revised"),
                ),
                description="Floor plan, level 1",
            ),
            dwg_pdf("A-102", "Second Floor Plan", 1, 360),
            dwg_pdf("A-201", "Exterior Elevations", 1, 300),
            dwg_pdf("A-301", "Building Sections"),
            dwg_pdf("A-501", "Wall Sections and Details"),
            # Removed by mistake, then re-issued: the old copy sits in the recycle bin.
            _file("A-101 First Floor Plan (old copy).pdf",
                  _drawing(p, "A-101", "First Floor Plan (old copy)", 0, 200),
                  OTHER_USER_ID, 90.0, deleted=True),
        ),
        _folder(
            "Structural",
            dwg_pdf("S-001", "General Notes", size_kib=150),
            SeedFile(
                "S-101 Foundation Plan.pdf",
                (
                    _v(_drawing(p, "S-101", "Foundation Plan", 0, 300), PM_USER_ID, 140.0,
                       "Rev 0 - Issued for Permit"),
                    _v(_drawing(p, "S-101", "Foundation Plan", 1, 320), OTHER_USER_ID, 21.0,
                       "Rev 1 - RFI 001 slab edge response"),
                ),
            ),
            dwg_pdf("S-201", "Second Floor Framing Plan", 1),
        ),
        _folder("Mechanical", dwg_pdf("M-101", "HVAC Plan Level 1"),
                dwg_pdf("M-601", "Mechanical Schedules", size_kib=140)),
        _folder("Electrical", dwg_pdf("E-101", "Lighting Plan Level 1"),
                dwg_pdf("E-601", "Panel Schedules", size_kib=130)),
        _folder("Plumbing", dwg_pdf("P-101", "Plumbing Plan Level 1")),
        _folder("Civil", dwg_pdf("C-101", "Site Plan", size_kib=420)),
        _folder("Interiors - Diseño Interior", dwg_pdf("I-101", "Finish Plan")),
        _folder(
            "Landscape (superseded)",
            dwg_pdf("L-101", "Planting Plan"),
            dwg_pdf("L-501", "Site Furnishings"),
            deleted=True,
            days=95.0,
        ),
    )
    specs = _folder(
        "02 Specifications",
        _file("00 01 10 - Table of Contents.pdf", _spec(p, "00 01 10", "Table of Contents"),
              PM_USER_ID, 160.0, read_only=True),
        _folder("Division 03 - Concrete",
                _file("03 30 00 - Cast-in-Place Concrete.pdf",
                      _spec(p, "03 30 00", "Cast-in-Place Concrete"), PM_USER_ID, 160.0)),
        _folder("Division 05 - Metals",
                _file("05 12 00 - Structural Steel Framing.pdf",
                      _spec(p, "05 12 00", "Structural Steel Framing"), PM_USER_ID, 160.0)),
        _folder("Division 08 - Openings",
                _file("08 71 00 - Door Hardware.pdf",
                      _spec(p, "08 71 00", "Door Hardware"), PM_USER_ID, 160.0)),
        _folder("Division 09 - Finishes",
                _file("09 29 00 - Gypsum Board.pdf",
                      _spec(p, "09 29 00", "Gypsum Board"), PM_USER_ID, 160.0)),
        _folder("Division 23 - HVAC",
                _file("23 05 00 - Common Work Results for HVAC.pdf",
                      _spec(p, "23 05 00", "Common Work Results for HVAC"), PM_USER_ID, 160.0)),
        _folder("Division 26 - Electrical",
                _file("26 05 19 - Low-Voltage Electrical Power Conductors and Cables.pdf",
                      _spec(p, "26 05 19", "Low-Voltage Electrical Power Conductors and Cables"),
                      PM_USER_ID, 160.0)),
    )
    submittals = _folder(
        "03 Submittals",
        SeedFile(
            "05 12 00-001 Structural Steel Shop Drawings.pdf",
            (
                _v(samples.pdf(f"{p}|sub-05-12-00-001|r0", "05 12 00-001 Shop Drawings Rev 0",
                               pad_to=520 * 1024), OTHER_USER_ID, 75.0,
                   "Rev 0 - Revise and resubmit"),
                _v(samples.pdf(f"{p}|sub-05-12-00-001|r1", "05 12 00-001 Shop Drawings Rev 1",
                               pad_to=540 * 1024), OTHER_USER_ID, 40.0,
                   "Rev 1 - Approved as noted"),
            ),
        ),
        _file("08 71 00-001 Door Hardware Product Data.pdf",
              samples.pdf(f"{p}|sub-08-71-00-001", "Door Hardware Product Data"),
              OTHER_USER_ID, 55.0),
        _file("08 71 00-002 Door Hardware <Group 3> *DRAFT*.docx",
              samples.docx(f"{p}|sub-08-71-00-002", "Door Hardware Group 3 (draft)"),
              OTHER_USER_ID, 12.0),
        _file("Prüfbericht Betondruckfestigkeit - Lab Report.pdf",
              samples.pdf(f"{p}|lab-report", "Prüfbericht Betondruckfestigkeit (28-day breaks)"),
              PM_USER_ID, 33.0),
        _file("Submittal Log.xlsx", samples.xlsx(f"{p}|submittal-log", "Submittal Log", [
            ("Number", "Title", "Status", "Ball In Court"),
            ("05 12 00-001", "Structural Steel Shop Drawings", "Approved as noted", "Contractor"),
            ("08 71 00-001", "Door Hardware Product Data", "Under review", "Architect"),
            ("08 71 00-002", "Door Hardware Group 3", "Draft", "Contractor"),
        ]), DEMO_USER_ID, 9.0),
    )
    rfis = _folder(
        "04 RFIs",
        _file("RFI 001 - Slab Edge Dimension.pdf",
              samples.pdf(f"{p}|rfi-001", "RFI 001 - Slab Edge Dimension at Grid C/4"),
              DEMO_USER_ID, 50.0),
        _file("RFI 007 - Duplicate (void).pdf", samples.pdf(f"{p}|rfi-007", "RFI 007 (void)"),
              DEMO_USER_ID, 44.0, deleted=True),
        _file("RFI 012: Beam size?.pdf",
              samples.pdf(f"{p}|rfi-012", "RFI 012: Beam size at grid B/3?"),
              OTHER_USER_ID, 18.0, "Asked during steel coordination"),
        _file("RFI Log.xlsx", samples.xlsx(f"{p}|rfi-log", "RFI Log", [
            ("RFI", "Subject", "Status", "Days Open"),
            ("001", "Slab Edge Dimension", "Closed", 6),
            ("007", "Duplicate (void)", "Void", 0),
            ("012", "Beam size?", "Open", 18),
        ]), DEMO_USER_ID, 3.0),
    )
    contracts = _folder(
        "05 Contracts",
        _file("Prime Contract - AIA A101.pdf",
              samples.pdf(f"{p}|prime", "Standard Form of Agreement Between Owner and Contractor",
                          pad_to=300 * 1024), PM_USER_ID, 190.0),
        _file("Subcontract - Summit Steel Erectors.docx",
              samples.docx(f"{p}|sub-steel", "Subcontract Agreement - Summit Steel Erectors"),
              PM_USER_ID, 170.0),
        _file("Change Order 003.pdf", samples.pdf(f"{p}|co-003", "Change Order 003"),
              PM_USER_ID, 25.0),
        private=True,
    )
    photos = _folder(
        "06 Photos",
        _file("2024-03-14 Level 1 Slab Pour - North.jpg",
              samples.jpeg(f"{p}|photo-1", 128, 96), OTHER_USER_ID, 80.0),
        _file("2024-03-14 Level 1 Slab Pour - South.jpg",
              samples.jpeg(f"{p}|photo-2", 128, 96), OTHER_USER_ID, 80.0),
        _file("2024-04-02 Steel Erection Grid C.jpg",
              samples.jpeg(f"{p}|photo-3", 96, 128), OTHER_USER_ID, 61.0),
        _file("Façade Mock-up.jpg", samples.jpeg(f"{p}|photo-4", 96, 64), DEMO_USER_ID, 30.0),
        _file("現場写真 - Lobby Framing.jpg", samples.jpeg(f"{p}|photo-5", 96, 64),
              PM_USER_ID, 20.0),
        _file("Topping Out 🎉.jpg", samples.jpeg(f"{p}|photo-6", 128, 96), DEMO_USER_ID, 14.0),
    )
    minutes = _folder(
        "07 Meeting Minutes",
        SeedFile(
            "OAC Meeting 014 - 2024-03-12.docx",
            (
                _v(samples.docx(f"{p}|oac-014|draft", "OAC Meeting 014 (draft)"),
                   PM_USER_ID, 36.0, "Draft for review"),
                _v(samples.docx(f"{p}|oac-014|final", "OAC Meeting 014"),
                   DEMO_USER_ID, 34.0, "Final, comments from the architect incorporated"),
            ),
        ),
        _file("OAC Meeting 015 - 2024-03-26.docx",
              samples.docx(f"{p}|oac-015", "OAC Meeting 015"), PM_USER_ID, 20.0),
        _file("Café Tenant Fit-Out Kickoff.docx",
              samples.docx(f"{p}|cafe", "Café Tenant Fit-Out Kickoff"), DEMO_USER_ID, 11.0),
    )
    schedules = _folder(
        "08 Schedules",
        _file("Baseline Schedule.xlsx", samples.xlsx(f"{p}|baseline", "Baseline Schedule", [
            ("Activity", "Start", "Finish", "Duration (d)"),
            ("Mobilization", "2024-01-08", "2024-01-19", 10),
            ("Foundations", "2024-01-22", "2024-03-15", 40),
            ("Structural Steel", "2024-03-18", "2024-05-10", 40),
            ("Enclosure", "2024-05-13", "2024-08-02", 60),
            ("Interiors", "2024-07-01", "2024-11-29", 110),
        ]), PM_USER_ID, 180.0),
        SeedFile(
            "3-Week Lookahead.xlsx",
            tuple(
                _v(samples.xlsx(f"{p}|lookahead|{week}", f"Lookahead week {week}"),
                   (PM_USER_ID, OTHER_USER_ID, DEMO_USER_ID, OTHER_USER_ID)[week - 1],
                   7.0 * (5 - week), f"Week {week} update")
                for week in range(1, 5)
            ),
        ),
    )
    budget = _folder(
        "09 Budget",
        _file("Budget - Cost Report.xlsx", samples.xlsx(f"{p}|cost-report", "Cost Report"),
              PM_USER_ID, 10.0),
        _file("Owner Budget - Confidential.xlsx",
              samples.xlsx(f"{p}|owner-budget", "Owner Budget"), PM_USER_ID, 45.0,
              private=True),
    )
    cad = _folder(
        "10 CAD",
        SeedFile(
            "A-101 First Floor Plan.dwg",
            (
                _v(samples.dwg(f"{p}|a101-dwg|0", 420 * 1024), PM_USER_ID, 150.0,
                   "Permit set"),
                _v(samples.dwg(f"{p}|a101-dwg|1", 436 * 1024), DEMO_USER_ID, 8.0,
                   "Bulletin 3 door tags"),
            ),
            checked_out_by=OTHER_USER_ID,
            checked_out_for_seconds=CHECKED_OUT_FOR_SECONDS,
        ),
        _file('Detail "A" | Section.dwg', samples.dwg(f"{p}|detail-a", 150 * 1024),
              OTHER_USER_ID, 27.0),
        _file("Xref - Site Base.dwg", samples.dwg(f"{p}|xref-site", 900 * 1024),
              PM_USER_ID, 170.0),
    )
    survey = _folder(
        "11 Survey",
        _file("Site Survey Point Cloud.las", samples.las(f"{p}|point-cloud", BIG_FILE_POINTS),
              OTHER_USER_ID, 120.0, "Terrestrial scan, 2024-01-10"),
        _file("Survey Control Notes.txt", samples.text(f"{p}|survey-notes", (
            "Survey control - Harbor View MOB\n"
            "CP-1  N 512034.221  E 1298331.904  EL 104.332  (brass disk, NE curb)\n"
            "CP-2  N 511876.015  E 1298522.470  EL 103.918  (PK nail, driveway)\n"
            "Datum: NAD83 / NAVD88, US survey feet.\n"
        )), OTHER_USER_ID, 120.0),
    )
    closeout = _folder(
        "12 Closeout",
        _file("Attic Stock Log.txt", samples.empty(), DEMO_USER_ID, 2.0),
        _file("Warranty Contacts.txt", samples.text(f"{p}|warranty"), DEMO_USER_ID, 2.0),
    )
    long_parts = LONG_PATH.split("/")
    long_leaf = _file(long_parts[-1], _drawing(p, "A-121", "Enlarged Plan - Suite 210", 4, 90),
                      PM_USER_ID, 110.0)
    archive_node: Entry = long_leaf
    for name in reversed(long_parts[1:-1]):
        archive_node = _folder(name, archive_node, days=110.0)
    archive = _folder(long_parts[0], archive_node, days=110.0)
    return _folder(
        PROJECT_NAME, drawings, specs, submittals, rfis, contracts, photos, minutes, schedules,
        budget, cad, survey, closeout, archive,
    )


def _project_two() -> SeedFolder:
    p = SECOND_PROJECT_NAME

    def sheet(number: str, title: str) -> SeedFile:
        return _file(f"{number} {title}.pdf", _drawing(p, number, title, 0, 160),
                     PM_USER_ID, 90.0)

    return _folder(
        SECOND_PROJECT_NAME,
        _folder(
            "Drawings",
            _folder("Architectural", sheet("A-101", "Floor Plan - Classroom Wing"),
                    sheet("A-201", "Exterior Elevations")),
            _folder("Structural", sheet("S-101", "Foundation Plan")),
            _folder("Mechanical", sheet("M-101", "HVAC Plan")),
            _folder("Electrical", sheet("E-101", "Power Plan")),
            _folder("Plumbing", sheet("P-101", "Plumbing Plan")),
        ),
        _folder(
            "Specifications",
            _file("03 30 00 - Cast-in-Place Concrete.pdf",
                  _spec(p, "03 30 00", "Cast-in-Place Concrete"), PM_USER_ID, 95.0),
            _file("09 65 13 - Resilient Base and Accessories.pdf",
                  _spec(p, "09 65 13", "Resilient Base and Accessories"), PM_USER_ID, 95.0),
            _file("23 09 23 - Direct-Digital Control System for HVAC.pdf",
                  _spec(p, "23 09 23", "Direct-Digital Control System for HVAC"),
                  PM_USER_ID, 95.0),
        ),
        _folder("Submittals",
                _file("09 65 13-001 Rubber Base Product Data.pdf",
                      samples.pdf(f"{p}|sub-09-65-13", "Rubber Base Product Data"),
                      OTHER_USER_ID, 30.0)),
        _folder("RFIs",
                _file("RFI 003 - Roof Drain Location.pdf",
                      samples.pdf(f"{p}|rfi-003", "RFI 003 - Roof Drain Location"),
                      DEMO_USER_ID, 15.0)),
        _folder("Contracts",
                _file("Subcontract - Cedar Creek Mechanical.docx",
                      samples.docx(f"{p}|sub-mech", "Subcontract - Cedar Creek Mechanical"),
                      PM_USER_ID, 100.0)),
        _folder("Photos",
                _file("2024-05-20 Existing Conditions.jpg", samples.jpeg(f"{p}|photo-1"),
                      OTHER_USER_ID, 40.0)),
        _folder("Meeting Minutes",
                _file("Pre-Construction Meeting.docx",
                      samples.docx(f"{p}|precon", "Pre-Construction Meeting"),
                      DEMO_USER_ID, 60.0)),
        _folder(
            "Schedules",
            SeedFile(
                "Master Schedule.xlsx",
                (
                    _v(samples.xlsx(f"{p}|master|1", "Master Schedule"), PM_USER_ID, 70.0,
                       "Baseline"),
                    _v(samples.xlsx(f"{p}|master|2", "Master Schedule"), OTHER_USER_ID, 5.0,
                       "Update 1 - summer break sequencing"),
                ),
            ),
        ),
        _folder("CAD", _file("Site Plan.dwg", samples.dwg(f"{p}|site-plan", 300 * 1024),
                             PM_USER_ID, 90.0)),
        days=100.0,
    )


def _company_documents() -> SeedFolder:
    c = COMPANY_NAME
    return _folder(
        COMPANY_NAME,
        _folder(
            "Standards",
            _file("CAD Standards Manual.pdf",
                  samples.pdf(f"{c}|cad-standards", "CAD Standards Manual", pad_to=180 * 1024),
                  PM_USER_ID, 400.0),
            _file("Drawing Numbering Standard.docx",
                  samples.docx(f"{c}|numbering", "Drawing Numbering Standard"),
                  PM_USER_ID, 380.0),
            _file("Summit Ridge Title Block.dwg", samples.dwg(f"{c}|title-block", 64 * 1024),
                  PM_USER_ID, 380.0),
        ),
        _folder(
            "Templates",
            _file("RFI Template.docx", samples.docx(f"{c}|rfi-template", "Request for Information"),
                  DEMO_USER_ID, 300.0),
            _file("RFI Template (2019).docx",
                  samples.docx(f"{c}|rfi-template-2019", "Request for Information (2019)"),
                  DEMO_USER_ID, 900.0, deleted=True),
            _file("Submittal Transmittal.docx",
                  samples.docx(f"{c}|transmittal", "Submittal Transmittal"), DEMO_USER_ID, 300.0),
            _file("Meeting Minutes Template.docx",
                  samples.docx(f"{c}|minutes-template", "Meeting Minutes"), DEMO_USER_ID, 300.0),
            _file("Daily Log Template.xlsx", samples.xlsx(f"{c}|daily-log", "Daily Log", [
                ("Date", "Weather", "Crew Count", "Work Performed", "Delays"),
            ]), DEMO_USER_ID, 300.0),
        ),
        _folder(
            "Safety",
            SeedFile(
                "Site Safety Plan.pdf",
                (
                    _v(samples.pdf(f"{c}|safety-plan|2023", "Site Safety Plan 2023"),
                       PM_USER_ID, 400.0, "2023 edition"),
                    _v(samples.pdf(f"{c}|safety-plan|2024", "Site Safety Plan 2024"),
                       OTHER_USER_ID, 60.0, "2024 edition: fall protection section rewritten"),
                ),
            ),
            _file("Toolbox Talk - Ladder Safety.pdf",
                  samples.pdf(f"{c}|toolbox-ladder", "Toolbox Talk - Ladder Safety"),
                  OTHER_USER_ID, 200.0),
            _file("Toolbox Talk - Trabajo en Altura (Español).pdf",
                  samples.pdf(f"{c}|toolbox-altura", "Charla de Seguridad - Trabajo en Altura"),
                  OTHER_USER_ID, 200.0),
            _file("Incident Report Form.docx",
                  samples.docx(f"{c}|incident-form", "Incident Report Form"),
                  PM_USER_ID, 250.0),
            _folder(
                "Incident Reports (Confidential)",
                _file("2024-02-07 Near Miss Report.docx",
                      samples.docx(f"{c}|near-miss", "Near Miss Report 2024-02-07"),
                      PM_USER_ID, 55.0),
                private=True,
            ),
        ),
        days=500.0,
    )


def demo_seed() -> Seed:
    """Summit Ridge Builders: two projects with realistic construction Documents and the edge
    cases the drive must survive (see the module constants for where they are).

    All names are NFC; a name stored in NFD form (what macOS produces) is not seeded.
    """
    first = _project_one()
    second = _project_two()
    company = SeedCompany(
        id=COMPANY_ID,
        name=COMPANY_NAME,
        projects=(
            SeedProject(PROJECT_ID, PROJECT_NAME, f"{PROJECT_NUMBER} - {PROJECT_NAME}",
                        PROJECT_NUMBER, first),
            SeedProject(SECOND_PROJECT_ID, SECOND_PROJECT_NAME,
                        f"{SECOND_PROJECT_NUMBER} - {SECOND_PROJECT_NAME}",
                        SECOND_PROJECT_NUMBER, second),
        ),
        documents=_company_documents(),
        member_user_ids=_members(),
    )
    return Seed(
        name="demo",
        users=_users(),
        apps=_apps(),
        companies=(company,),
        demo_user_id=DEMO_USER_ID,
        extra=_extra("demo"),
    )


# --- the large seed --------------------------------------------------------------------------

LISTING_FOLDER_PREFIX = "Listing"  # large_seed's folder of ``folder_files`` files
BIG_FILES_FOLDER = "Big Files"  # large_seed's folder of ``big_files`` files


def large_seed(
    folders: int = 200,
    files: int = 2000,
    file_size: int = 4096,
    big_files: int = 0,
    big_file_size: int = 256 * 2**20,
    folder_files: int = 0,
) -> Seed:
    """A benchmark tree in PROJECT_ID's Documents.

    ``folders`` folders "Folder NNNN" a few levels deep (a fan-out of about the cube root of
    the count), and ``files`` files "File NNNNNN.bin" of ``file_size`` bytes dealt round-robin
    over them (over the root when ``folders`` is 0). Beside them, at the root: when
    ``folder_files`` > 0, one folder "Listing N" holding that many small files (listing
    benchmarks); when ``big_files`` > 0, one folder "Big Files" holding that many files of
    ``big_file_size`` bytes (read benchmarks). Those two folders and their files come on top of
    ``folders`` and ``files``. Every file's bytes differ and are streamed when read.
    """
    for knob, value in (("folders", folders), ("files", files), ("file_size", file_size),
                        ("big_files", big_files), ("big_file_size", big_file_size),
                        ("folder_files", folder_files)):
        if value < 0:
            raise ValueError(f"large seed: {knob} must be >= 0, not {value}")
    fanout = max(2, math.ceil(folders ** (1 / 3))) if folders else 0
    # Breadth-first: folder i's parent is folder (i // fanout) - 1, or the root for the first
    # ``fanout`` folders; children are collected per parent, then frozen bottom-up.
    kids: list[list[Entry]] = [[] for _ in range(folders + 1)]  # index 0 is the root

    for n in range(files):
        holder = (n % folders) + 1 if folders else 0
        kids[holder].append(
            SeedFile(
                name=f"File {n:06d}.bin",
                versions=(_v(samples.random_bytes(f"large:file:{n}", file_size),
                             DEMO_USER_ID, float(n % 365)),),
            )
        )

    # Children have higher indexes than their parent, so walking down freezes them first.
    for i in range(folders, 0, -1):
        folder = SeedFolder(name=f"Folder {i:04d}", children=tuple(kids[i]),
                            age_seconds=float(i % 365) * DAY)
        parent = (i - 1) // fanout if i > fanout else 0
        kids[parent].append(folder)

    root_children: list[Entry] = []
    # Parents were appended after their files, children in reverse: put folders first, sorted.
    root_children.extend(sorted((e for e in kids[0] if isinstance(e, SeedFolder)),
                                key=lambda e: e.name))
    root_children.extend(e for e in kids[0] if isinstance(e, SeedFile))
    if folder_files:
        root_children.append(SeedFolder(
            name=f"{LISTING_FOLDER_PREFIX} {folder_files}",
            children=tuple(
                SeedFile(name=f"Item {n:06d}.txt",
                         versions=(_v(samples.random_bytes(f"large:listing:{n}", file_size),
                                      DEMO_USER_ID, 1.0),))
                for n in range(folder_files)
            ),
        ))
    if big_files:
        root_children.append(SeedFolder(
            name=BIG_FILES_FOLDER,
            children=tuple(
                SeedFile(name=f"Big File {n:03d}.bin",
                         versions=(_v(samples.random_bytes(f"large:big:{n}", big_file_size),
                                      DEMO_USER_ID, 1.0),))
                for n in range(big_files)
            ),
        ))
    company = SeedCompany(
        id=COMPANY_ID,
        name=COMPANY_NAME,
        projects=(_project(SeedFolder(PROJECT_NAME, tuple(root_children))),),
        documents=SeedFolder(COMPANY_NAME),
        member_user_ids=_members(),
    )
    extra = _extra("large")
    extra.update(folders=str(folders), files=str(files), file_size=str(file_size),
                 big_files=str(big_files), big_file_size=str(big_file_size),
                 folder_files=str(folder_files))
    return Seed(name="large", users=_users(), apps=_apps(), companies=(company,),
                demo_user_id=DEMO_USER_ID, extra=extra)


# --- by name -----------------------------------------------------------------------------------

LARGE_KNOBS: tuple[str, ...] = (
    "folders", "files", "file_size", "big_files", "big_file_size", "folder_files",
)


def _int_knob(name: str, value: object) -> int:
    # Knobs arrive from the CLI and the control API's JSON: ints, or strings of digits.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"large seed: {name} must be an integer, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"large seed: {name} must be an integer, not {value!r}") from None


def build_seed(name: str, **knobs: object) -> Seed:
    """The seed called ``name`` ("empty", "demo" or "large"; only "large" takes knobs)."""
    if name not in SEED_NAMES:
        raise ValueError(f"unknown seed {name!r}; valid seeds: {', '.join(SEED_NAMES)}")
    if name == "large":
        unknown = sorted(set(knobs) - set(LARGE_KNOBS))
        if unknown:
            raise ValueError(
                f"unknown knob(s) for the large seed: {', '.join(unknown)}; "
                f"valid: {', '.join(LARGE_KNOBS)}"
            )
        return large_seed(**{k: _int_knob(k, v) for k, v in knobs.items()})
    if knobs:
        raise ValueError(f"the {name} seed takes no knobs (got {', '.join(sorted(knobs))})")
    return empty_seed() if name == "empty" else demo_seed()
