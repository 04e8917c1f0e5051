"""The emulator's durable state in SQLite: people, OAuth grants, companies, projects, and the
Documents tree (folders, files, versions) with every rule the API enforces on it.

One connection, used only from the event loop thread, in autocommit mode with explicit short
``BEGIN IMMEDIATE`` transactions; WAL journal so E2's upload registry (its own connection to
the same file) and this one never block each other for long. Tokens and authorization codes
are stored as SHA-256 digests only.

The tree: folders and files share the ``items`` table so that the flat ``/documents`` index,
its filters and its sort orders are single queries. Each item carries ``idpath`` (its
ancestors' ids and its own, ``/1/7/9/``) so a subtree is one index range scan, and
``name_with_path``; both are rewritten for the whole subtree on a move. A scope is
``(company_id, project_id)`` with ``project_id = 0`` for company-level documents.

Rules decided here (procore-api.md §4, inferences marked there and in docs/emulator.md):
sibling names are unique among live items of the same kind (folders 400, files 422 unless
``unique_name``); deleting moves an item to the recycle bin (``is_deleted``, cascaded to its
subtree, the item itself marked as a deletion root); a folder cannot move into its own
subtree; a file checked out by someone else cannot be changed by anyone but an admin (409);
private items are visible only to their creator and the company's admins.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from procorefs.emulator.context import JsonError, Principal, errors, field_errors
from procorefs.emulator.seedtypes import Seed, SeedFile, SeedFolder, SeedVersion

if TYPE_CHECKING:
    from procorefs.emulator.blobs import BlobRef, BlobStore

Row = sqlite3.Row
SeedKey = tuple[object, ...]

# Ids: folders are ordinary, files and versions live above 2**32 as ids in new Procore
# regions do (procore-api.md §0, /tutorial-mpz), so a client that truncates to 32 bits breaks.
FIRST_FOLDER_ID = 100_000_001
FIRST_FILE_ID = 2**32 + 1_000_001
FIRST_VERSION_ID = 2**32 + 500_000_001
FIRST_PROSTORE_ID = 9_000_000_001
RECYCLE_BIN_NAME = "Recycle Bin"
DEFAULT_CHECKOUT_SECONDS = 7 * 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, redirect_uris TEXT NOT NULL,
    service_user_id INTEGER);
CREATE TABLE IF NOT EXISTS companies (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, position INTEGER NOT NULL,
    created_at REAL NOT NULL, root_id INTEGER, bin_id INTEGER);
CREATE TABLE IF NOT EXISTS memberships (
    company_id INTEGER NOT NULL, user_id INTEGER NOT NULL, is_admin INTEGER NOT NULL,
    position INTEGER NOT NULL, PRIMARY KEY (company_id, user_id));
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL, name TEXT NOT NULL,
    display_name TEXT NOT NULL, project_number TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, root_id INTEGER, bin_id INTEGER);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    company_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    parent_id INTEGER,
    name TEXT NOT NULL,
    idpath TEXT NOT NULL,
    name_with_path TEXT NOT NULL,
    is_root INTEGER NOT NULL DEFAULT 0,
    is_recycle_bin INTEGER NOT NULL DEFAULT 0,
    is_deleted INTEGER NOT NULL DEFAULT 0,
    deleted_root INTEGER NOT NULL DEFAULT 0,
    private INTEGER NOT NULL DEFAULT 0,
    read_only INTEGER NOT NULL DEFAULT 0,
    is_tracked INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    description TEXT,
    checked_out_by INTEGER,
    checked_out_until REAL,
    current_version_id INTEGER,
    size INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS items_parent ON items (parent_id, kind, name);
CREATE INDEX IF NOT EXISTS items_scope ON items (company_id, project_id, id);
CREATE INDEX IF NOT EXISTS items_updated ON items (company_id, project_id, updated_at);
CREATE INDEX IF NOT EXISTS items_idpath ON items (idpath);
CREATE INDEX IF NOT EXISTS items_private ON items (company_id, project_id, private);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, number INTEGER NOT NULL, notes TEXT,
    name TEXT NOT NULL, blob_key TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    created_at REAL NOT NULL, created_by INTEGER NOT NULL, prostore_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS versions_file ON versions (file_id, number);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, access_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT UNIQUE, user_id INTEGER NOT NULL, client_id TEXT,
    created_at REAL NOT NULL, expires_in INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0, refresh_used INTEGER NOT NULL DEFAULT 0,
    service INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS codes (
    hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id INTEGER NOT NULL,
    redirect_uri TEXT NOT NULL, created_at REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
"""

_RESET_TABLES = ("users", "apps", "companies", "memberships", "projects", "items", "versions",
                 "tokens", "codes", "counters")


@dataclass(frozen=True)
class Scope:
    company_id: int
    project_id: int = 0  # 0: company-level documents

    @property
    def project(self) -> int | None:
        return self.project_id or None


@dataclass(frozen=True)
class NewContent:
    """What a new version is made of: a blob already in the blob store."""

    key: str
    size: int
    sha256: str


class Unset:
    """Marks a PATCH field that was not sent (as opposed to sent as null)."""


UNSET = Unset()


def subtree_bounds(idpath: str) -> tuple[str, str]:
    """``idpath >= lo AND idpath < hi`` selects the item and all its descendants."""
    # '/' sorts right before '0', so replacing the trailing '/' by '0' bounds the range.
    return idpath, idpath[:-1] + "0"


def _split_ext(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def file_type_of(name: str) -> str | None:
    _, ext = _split_ext(name)
    return ext[1:].upper() if ext else None


class Store:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        row: Row | None = self.db.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return list(self.db.execute(sql, args).fetchall())

    def _next_id(self, name: str, first: int) -> int:
        row = self.one("SELECT value FROM counters WHERE name = ?", (name,))
        value = first if row is None else int(row["value"])
        self.db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                        (name, value + 1))
        return value

    # -- meta ----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def seeded(self) -> bool:
        return self.meta("seed") is not None

    @property
    def demo_user_id(self) -> int:
        return int(self.meta("demo_user_id") or 0)

    # -- seeding -------------------------------------------------------------------------------

    def clear(self) -> None:
        with self.tx() as db:
            for table in _RESET_TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta")

    def load_seed(self, seed: Seed, refs: Mapping[SeedKey, BlobRef], now: float) -> None:
        """Replace everything with ``seed``; ``refs`` holds each version's blob (seed_blobs)."""
        with self.tx() as db:
            for table in _RESET_TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta")
            all_users = [u.id for u in seed.users]
            service_users = {a.service_user_id for a in seed.apps if a.service_user_id}
            for user in seed.users:
                db.execute("INSERT INTO users (id, login, name) VALUES (?, ?, ?)",
                           (user.id, user.login, user.name))
            for app in seed.apps:
                db.execute("INSERT INTO apps VALUES (?, ?, ?, ?)",
                           (app.client_id, app.client_secret, json.dumps(list(app.redirect_uris)),
                            app.service_user_id))
            for position, company in enumerate(seed.companies):
                members = list(company.member_user_ids) or [
                    seed.demo_user_id, *[u for u in all_users if u != seed.demo_user_id]]
                # SeedUser has no admin flag: seed.py names admins in ``extra``; failing
                # that, the first member administers the company.
                admins = _id_list(seed.extra.get("company_admin_user_ids")) or [members[0]]
                admin = admins[0]
                for pos, uid in enumerate([*members, *sorted(service_users - set(members))]):
                    db.execute("INSERT OR IGNORE INTO memberships VALUES (?, ?, ?, ?)",
                               (company.id, uid, int(uid in admins), pos))
                created = now - 3 * 365 * 86400
                db.execute("INSERT INTO companies (id, name, position, created_at) "
                           "VALUES (?, ?, ?, ?)", (company.id, company.name, position, created))
                root, bin_id = self._make_root(Scope(company.id), company.name, created, admin)
                db.execute("UPDATE companies SET root_id = ?, bin_id = ? WHERE id = ?",
                           (root, bin_id, company.id))
                self._load_children(Scope(company.id), root, company.documents, refs,
                                    (company.id, 0), now, admin)
                for project in company.projects:
                    pcreated = now - 2 * 365 * 86400
                    db.execute("INSERT INTO projects (id, company_id, name, display_name, "
                               "project_number, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (project.id, company.id, project.name, project.display_name,
                                project.project_number, pcreated, now - 86400))
                    scope = Scope(company.id, project.id)
                    root, bin_id = self._make_root(scope, project.name, pcreated, admin)
                    db.execute("UPDATE projects SET root_id = ?, bin_id = ? WHERE id = ?",
                               (root, bin_id, project.id))
                    self._load_children(scope, root, project.documents, refs,
                                        (company.id, project.id), now, admin)
            self.set_meta("seed", seed.name)
            self.set_meta("demo_user_id", str(seed.demo_user_id))

    def _make_root(self, scope: Scope, name: str, created: float,
                   admin: int) -> tuple[int, int]:
        root = self._next_id("folder", FIRST_FOLDER_ID)
        self.db.execute(
            "INSERT INTO items (id, kind, company_id, project_id, parent_id, name, idpath, "
            "name_with_path, is_root, created_by, created_at, updated_at) "
            "VALUES (?, 'folder', ?, ?, NULL, ?, ?, ?, 1, ?, ?, ?)",
            (root, scope.company_id, scope.project_id, name, f"/{root}/", name, admin,
             created, created))
        bin_id = self._next_id("folder", FIRST_FOLDER_ID)
        self.db.execute(
            "INSERT INTO items (id, kind, company_id, project_id, parent_id, name, idpath, "
            "name_with_path, is_recycle_bin, created_by, created_at, updated_at) "
            "VALUES (?, 'folder', ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (bin_id, scope.company_id, scope.project_id, root, RECYCLE_BIN_NAME,
             f"/{root}/{bin_id}/", f"{name}/{RECYCLE_BIN_NAME}", admin, created, created))
        return root, bin_id

    def _load_children(self, scope: Scope, parent_id: int, folder: SeedFolder,
                       refs: Mapping[SeedKey, BlobRef], key: SeedKey, now: float,
                       admin: int) -> None:
        parent = self._item(parent_id)
        for child in folder.children:
            child_key = (*key, child.name)
            deleted = bool(child.deleted) or bool(parent["is_deleted"])
            if isinstance(child, SeedFolder):
                when = now - child.age_seconds
                fid = self._insert_item(
                    "folder", scope, parent, child.name, admin, when, when,
                    private=child.private, read_only=child.read_only, deleted=deleted,
                    deleted_root=child.deleted and not parent["is_deleted"])
                self._load_children(scope, fid, child, refs, child_key, now, admin)
            else:
                self._load_file(scope, parent, child, refs, child_key, now, deleted)

    def _load_file(self, scope: Scope, parent: Row, seed_file: SeedFile,
                   refs: Mapping[SeedKey, BlobRef], key: SeedKey, now: float,
                   deleted: bool) -> None:
        versions = seed_file.versions
        if not versions:
            return
        first = versions[0]
        created = now - first.age_seconds
        updated = max(now - v.age_seconds for v in versions)
        fid = self._insert_item(
            "file", scope, parent, seed_file.name, first.created_by, created, updated,
            private=seed_file.private, read_only=seed_file.read_only, deleted=deleted,
            deleted_root=seed_file.deleted and not parent["is_deleted"],
            description=seed_file.description)
        for index, version in enumerate(versions):
            ref = refs[(*key, index)]
            self._insert_version(fid, index + 1, seed_file.name, ref.key, ref.size, ref.sha256,
                                 now - version.age_seconds, version.created_by, version.notes)
        if seed_file.checked_out_by is not None:
            seconds = seed_file.checked_out_for_seconds or DEFAULT_CHECKOUT_SECONDS
            self.db.execute("UPDATE items SET checked_out_by = ?, checked_out_until = ? "
                            "WHERE id = ?", (seed_file.checked_out_by, now + seconds, fid))

    def _insert_item(self, kind: str, scope: Scope, parent: Row, name: str, created_by: int,
                     created_at: float, updated_at: float, *, private: bool = False,
                     read_only: bool = False, deleted: bool = False, deleted_root: bool = False,
                     description: str | None = None, is_tracked: bool = False) -> int:
        item_id = (self._next_id("folder", FIRST_FOLDER_ID) if kind == "folder"
                   else self._next_id("file", FIRST_FILE_ID))
        self.db.execute(
            "INSERT INTO items (id, kind, company_id, project_id, parent_id, name, idpath, "
            "name_with_path, is_deleted, deleted_root, private, read_only, is_tracked, "
            "created_by, created_at, updated_at, description) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item_id, kind, scope.company_id, scope.project_id, parent["id"], name,
             f"{parent['idpath']}{item_id}/", f"{parent['name_with_path']}/{name}",
             int(deleted), int(deleted_root), int(private), int(read_only), int(is_tracked),
             created_by, created_at, updated_at, description))
        return item_id

    def _insert_version(self, file_id: int, number: int, name: str, key: str, size: int,
                        sha256: str, created_at: float, created_by: int,
                        notes: str | None) -> int:
        vid = self._next_id("version", FIRST_VERSION_ID)
        prostore = self._next_id("prostore", FIRST_PROSTORE_ID)
        self.db.execute(
            "INSERT INTO versions (id, file_id, number, notes, name, blob_key, size, sha256, "
            "created_at, created_by, prostore_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (vid, file_id, number, notes, name, key, size, sha256, created_at, created_by,
             prostore))
        self.db.execute("UPDATE items SET current_version_id = ?, size = ? WHERE id = ?",
                        (vid, size, file_id))
        return vid

    # -- people and apps -----------------------------------------------------------------------

    def user(self, user_id: int) -> Row | None:
        return self.one("SELECT * FROM users WHERE id = ?", (user_id,))

    def user_by_login(self, login: str) -> Row | None:
        return self.one("SELECT * FROM users WHERE login = ?", (login,))

    def users(self) -> list[Row]:
        return self.all("SELECT * FROM users ORDER BY id")

    def app(self, client_id: str) -> Row | None:
        return self.one("SELECT * FROM apps WHERE client_id = ?", (client_id,))

    def apps(self) -> list[Row]:
        return self.all("SELECT * FROM apps ORDER BY client_id")

    def redirect_uris(self, app: Row) -> list[str]:
        value = json.loads(str(app["redirect_uris"]))
        return [str(v) for v in value] if isinstance(value, list) else []

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str],
                     service_user_id: int | None) -> None:
        """Create the app, or add redirect URIs (and a new secret if given) to it."""
        with self.tx() as db:
            existing = self.app(client_id)
            if existing is None:
                db.execute("INSERT INTO apps VALUES (?, ?, ?, ?)",
                           (client_id, client_secret, json.dumps(redirect_uris),
                            service_user_id))
                return
            uris = self.redirect_uris(existing)
            uris.extend(u for u in redirect_uris if u not in uris)
            db.execute("UPDATE apps SET redirect_uris = ?, client_secret = ?, "
                       "service_user_id = COALESCE(?, service_user_id) WHERE client_id = ?",
                       (json.dumps(uris), client_secret or existing["client_secret"],
                        service_user_id, client_id))

    # -- OAuth grants --------------------------------------------------------------------------

    def issue_token(self, user_id: int, client_id: str | None, ttl: int, now: float, *,
                    refresh: bool = True, service: bool = False,
                    digest: Callable[[str], str]) -> tuple[str, str | None, int]:
        """A new opaque access token (and refresh token); only their digests are kept."""
        access = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32) if refresh else None
        created = int(now)
        with self.tx() as db:
            db.execute("INSERT INTO tokens (access_hash, refresh_hash, user_id, client_id, "
                       "created_at, expires_in, service) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (digest(access), digest(refresh_token) if refresh_token else None,
                        user_id, client_id, created, ttl, int(service)))
        return access, refresh_token, created

    def principal_for(self, access_hash: str, now: float) -> Principal | None:
        row = self.one("SELECT * FROM tokens WHERE access_hash = ?", (access_hash,))
        if row is None or row["revoked"] or now >= row["created_at"] + row["expires_in"]:
            return None
        if self.user(int(row["user_id"])) is None:
            return None
        return Principal(user_id=int(row["user_id"]), client_id=row["client_id"],
                         token_id=int(row["id"]), service=bool(row["service"]))

    def token_by_access(self, access_hash: str) -> Row | None:
        return self.one("SELECT * FROM tokens WHERE access_hash = ?", (access_hash,))

    def take_refresh(self, refresh_hash: str) -> Row | None:
        """The token row of a refresh token, burning it: a refresh token is single-use, even
        when the refresh that presents it fails (procore-api.md §1.3)."""
        with self.tx() as db:
            row: Row | None = db.execute("SELECT * FROM tokens WHERE refresh_hash = ?",
                                         (refresh_hash,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE tokens SET refresh_used = 1 WHERE id = ?", (row["id"],))
        return row

    def revoke(self, token_hash: str) -> bool:
        """Revoke the pair an access or refresh token belongs to."""
        with self.tx() as db:
            cur = db.execute("UPDATE tokens SET revoked = 1, refresh_used = 1 "
                             "WHERE access_hash = ? OR refresh_hash = ?",
                             (token_hash, token_hash))
        return cur.rowcount > 0

    def create_code(self, code_hash: str, client_id: str, user_id: int, redirect_uri: str,
                    now: float) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO codes (hash, client_id, user_id, redirect_uri, created_at) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (code_hash, client_id, user_id, redirect_uri, now))

    def take_code(self, code_hash: str) -> Row | None:
        """The grant of an authorization code; it is single-use, so any presentation uses it."""
        with self.tx() as db:
            row: Row | None = db.execute("SELECT * FROM codes WHERE hash = ?",
                                         (code_hash,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE codes SET used = 1 WHERE hash = ?", (code_hash,))
        return row

    # -- companies and projects ----------------------------------------------------------------

    def company(self, company_id: int) -> Row | None:
        return self.one("SELECT * FROM companies WHERE id = ?", (company_id,))

    def companies(self) -> list[Row]:
        return self.all("SELECT * FROM companies ORDER BY position")

    def companies_for(self, user_id: int) -> list[Row]:
        return self.all("SELECT c.* FROM companies c JOIN memberships m ON m.company_id = c.id "
                        "WHERE m.user_id = ? ORDER BY c.position", (user_id,))

    def home_company_id(self, user_id: int) -> int | None:
        """The company a user is an employee of: the first one that lists them (inferred)."""
        rows = self.companies_for(user_id)
        return int(rows[0]["id"]) if rows else None

    def is_member(self, user_id: int, company_id: int) -> bool:
        return self.one("SELECT 1 FROM memberships WHERE company_id = ? AND user_id = ?",
                        (company_id, user_id)) is not None

    def is_admin(self, user_id: int, company_id: int) -> bool:
        return self.one("SELECT 1 FROM memberships WHERE company_id = ? AND user_id = ? "
                        "AND is_admin = 1", (company_id, user_id)) is not None

    def company_admin(self, company_id: int) -> int | None:
        row = self.one("SELECT user_id FROM memberships WHERE company_id = ? AND is_admin = 1 "
                       "ORDER BY position LIMIT 1", (company_id,))
        return None if row is None else int(row["user_id"])

    def project(self, project_id: int) -> Row | None:
        return self.one("SELECT * FROM projects WHERE id = ?", (project_id,))

    def projects(self, company_id: int) -> list[Row]:
        return self.all("SELECT * FROM projects WHERE company_id = ? ORDER BY id", (company_id,))

    def scope_root(self, scope: Scope) -> tuple[int, int]:
        """(root folder id, recycle bin id) of a scope."""
        row = self.project(scope.project_id) if scope.project_id else self.company(scope.company_id)
        if row is None or row["root_id"] is None:
            raise errors(404, "Not Found")
        return int(row["root_id"]), int(row["bin_id"])

    def scope_name(self, scope: Scope) -> str:
        row = self.project(scope.project_id) if scope.project_id else self.company(
            scope.company_id)
        return "" if row is None else str(row["name"])

    # -- items: reading ------------------------------------------------------------------------

    def _item(self, item_id: int) -> Row:
        row = self.one("SELECT * FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise KeyError(item_id)
        return row

    def item(self, item_id: int) -> Row | None:
        return self.one("SELECT * FROM items WHERE id = ?", (item_id,))

    def hidden_roots(self, scope: Scope, user_id: int) -> list[Row]:
        """Private items this user may not see (their subtrees are hidden with them)."""
        if self.is_admin(user_id, scope.company_id):
            return []
        return self.all("SELECT id, idpath FROM items WHERE company_id = ? AND project_id = ? "
                        "AND private = 1 AND created_by != ?",
                        (scope.company_id, scope.project_id, user_id))

    def can_see(self, row: Row, user_id: int) -> bool:
        if self.is_admin(user_id, int(row["company_id"])):
            return True
        ancestors = [int(x) for x in str(row["idpath"]).strip("/").split("/")]
        marks = ",".join("?" * len(ancestors))
        hidden = self.one(f"SELECT 1 FROM items WHERE id IN ({marks}) AND private = 1 "
                          "AND created_by != ?", (*ancestors, user_id))
        return hidden is None

    def find(self, scope: Scope, item_id: int, user_id: int, kind: str) -> Row:
        """An item of ``kind`` in ``scope`` the user can see, or the documented 404."""
        row = self.item(item_id)
        if (row is None or row["kind"] != kind or row["company_id"] != scope.company_id
                or row["project_id"] != scope.project_id or not self.can_see(row, user_id)):
            raise errors(404, f"{'Folder' if kind == 'folder' else 'File'} not found")
        return row

    def children(self, folder: Row, user_id: int) -> list[Row]:
        """Direct children as a folder listing shows them.

        A live folder lists its live children, never the recycle bin; the recycle bin lists
        the items deleted in its scope (deletion roots); a deleted folder lists what was in it.
        Whether Procore does exactly this is not documented (procore-api.md §4.4, §4.8, §9.7).
        """
        admin = self.is_admin(user_id, int(folder["company_id"]))
        if folder["is_recycle_bin"]:
            rows = self.all("SELECT * FROM items WHERE company_id = ? AND project_id = ? "
                            "AND deleted_root = 1", (folder["company_id"], folder["project_id"]))
            hidden = [] if admin else self.hidden_roots(
                Scope(int(folder["company_id"]), int(folder["project_id"])), user_id)
            rows = [r for r in rows if not any(
                str(r["idpath"]).startswith(str(h["idpath"])) for h in hidden)]
        elif folder["is_deleted"]:
            rows = self.all("SELECT * FROM items WHERE parent_id = ?", (folder["id"],))
        else:
            rows = self.all("SELECT * FROM items WHERE parent_id = ? AND is_deleted = 0 "
                            "AND is_recycle_bin = 0", (folder["id"],))
        if not admin:
            rows = [r for r in rows if not (r["private"] and r["created_by"] != user_id)]
        rows.sort(key=lambda r: (str(r["name"]).casefold(), str(r["name"]), int(r["id"])))
        return rows

    def child_counts(self, folder_ids: Sequence[int], user_id: int,
                     company_id: int) -> dict[int, tuple[int, int]]:
        """(folders, files) each folder of ``folder_ids`` would list."""
        if not folder_ids:
            return {}
        admin = self.is_admin(user_id, company_id)
        out: dict[int, tuple[int, int]] = {fid: (0, 0) for fid in folder_ids}
        for start in range(0, len(folder_ids), 500):
            chunk = list(folder_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            visible = "" if admin else "AND (private = 0 OR created_by = ?)"
            args: list[object] = [*chunk, *([] if admin else [user_id])]
            for row in self.all(
                    f"SELECT parent_id, kind, COUNT(*) AS n FROM items WHERE parent_id IN "
                    f"({marks}) AND is_deleted = 0 AND is_recycle_bin = 0 {visible} "
                    f"GROUP BY parent_id, kind", args):
                folders, files = out[int(row["parent_id"])]
                if row["kind"] == "folder":
                    folders = int(row["n"])
                else:
                    files = int(row["n"])
                out[int(row["parent_id"])] = (folders, files)
        return out

    def versions_of(self, file_ids: Sequence[int], latest_only: bool) -> dict[int, list[Row]]:
        """Versions per file, newest first (as the documented example lists them)."""
        out: dict[int, list[Row]] = {fid: [] for fid in file_ids}
        for start in range(0, len(file_ids), 500):
            chunk = list(file_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            if latest_only:
                sql = (f"SELECT v.* FROM versions v JOIN items i ON i.current_version_id = v.id "
                       f"WHERE i.id IN ({marks})")
            else:
                sql = f"SELECT * FROM versions WHERE file_id IN ({marks})"
            for row in self.all(sql, chunk):
                out[int(row["file_id"])].append(row)
        for rows in out.values():
            rows.sort(key=lambda r: -int(r["number"]))
        return out

    def version(self, version_id: int) -> Row | None:
        return self.one("SELECT * FROM versions WHERE id = ?", (version_id,))

    def version_blob(self, version_id: int) -> tuple[str, str, int, int | None] | None:
        """(blob key, file name, company id, project id or None) for the download route."""
        row = self.one("SELECT v.blob_key, v.name, i.company_id, i.project_id FROM versions v "
                       "JOIN items i ON i.id = v.file_id WHERE v.id = ?", (version_id,))
        if row is None:
            return None
        return (str(row["blob_key"]), str(row["name"]), int(row["company_id"]),
                int(row["project_id"]) or None)

    def private_folders(self, scope: Scope) -> dict[int, Row]:
        return {int(r["id"]): r for r in self.all(
            "SELECT id, name, name_with_path FROM items WHERE company_id = ? AND project_id = ? "
            "AND private = 1 AND kind = 'folder'", (scope.company_id, scope.project_id))}

    # -- items: writing ------------------------------------------------------------------------

    def _sibling(self, parent_id: int, kind: str, name: str,
                 exclude: int | None = None) -> Row | None:
        return self.one("SELECT id FROM items WHERE parent_id = ? AND kind = ? AND name = ? "
                        "AND is_deleted = 0 AND is_recycle_bin = 0 AND id != ?",
                        (parent_id, kind, name, exclude or 0))

    def _taken(self, kind: str) -> JsonError:
        # Folders: 400 as observed by a third party; files: 422 (procore-api.md §4.6, §9.19).
        return field_errors(400 if kind == "folder" else 422, {"name": ["has already been taken"]})

    def unique_name(self, parent_id: int, name: str, exclude: int | None = None) -> str:
        """``name``, or ``name (1).ext``, ``name (2).ext``... whichever is free."""
        if self._sibling(parent_id, "file", name, exclude) is None:
            return name
        stem, ext = _split_ext(name)
        n = 1
        while self._sibling(parent_id, "file", f"{stem} ({n}){ext}", exclude) is not None:
            n += 1
        return f"{stem} ({n}){ext}"

    def target_folder(self, scope: Scope, parent_id: int | None, user_id: int) -> Row:
        """A live folder of the scope that can receive children (the root when None)."""
        if parent_id is None:
            root, _ = self.scope_root(scope)
            return self._item(root)
        row = self.find(scope, parent_id, user_id, "folder")
        if row["is_deleted"] or row["is_recycle_bin"]:
            raise field_errors(422, {"parent_id": ["is in the recycle bin"]})
        return row

    def create_folder(self, scope: Scope, user_id: int, name: str, parent_id: int | None,
                      now: float, *, private: bool = False, is_tracked: bool = False) -> Row:
        _check_name(name, "folder")
        parent = self.target_folder(scope, parent_id, user_id)
        if self._sibling(int(parent["id"]), "folder", name) is not None:
            raise self._taken("folder")
        with self.tx():
            fid = self._insert_item("folder", scope, parent, name, user_id, now, now,
                                    private=private, is_tracked=is_tracked)
        return self._item(fid)

    def create_file(self, scope: Scope, user_id: int, name: str, parent_id: int | None,
                    now: float, content: Callable[[], NewContent], *,
                    description: str | None = None, private: bool = False,
                    is_tracked: bool = False, unique: bool = False) -> Row:
        """Validate everything first, then take the content (which may consume an upload)."""
        _check_name(name, "file")
        parent = self.target_folder(scope, parent_id, user_id)
        if unique:
            name = self.unique_name(int(parent["id"]), name)
        elif self._sibling(int(parent["id"]), "file", name) is not None:
            raise self._taken("file")
        blob = content()
        with self.tx():
            fid = self._insert_item("file", scope, parent, name, user_id, now, now,
                                    private=private, is_tracked=is_tracked,
                                    description=description)
            self._insert_version(fid, 1, name, blob.key, blob.size, blob.sha256, now, user_id,
                                 None)
        return self._item(fid)

    def active_checkout(self, row: Row, now: float) -> int | None:
        """The user holding a check-out of this file, if it has not lapsed."""
        by = row["checked_out_by"]
        until = row["checked_out_until"]
        if by is None or until is None or float(until) <= now:
            return None
        return int(by)

    def check_writable(self, row: Row, user_id: int, now: float,
                       conflict: Callable[[Row], JsonError]) -> None:
        """Refuse changes to deleted or read-only items and to files someone else checked out."""
        if row["is_root"] or row["is_recycle_bin"]:
            raise JsonError(422, {"errors": {"base": [
                "The root folder and the recycle bin cannot be changed"]}})
        if row["is_deleted"]:
            raise errors(404, f"{'Folder' if row['kind'] == 'folder' else 'File'} not found")
        if row["read_only"]:
            raise errors(403, "This item is read-only: it can only be changed from the tool "
                              "that owns it")
        if row["kind"] == "file":
            holder = self.active_checkout(row, now)
            if holder is not None and holder != user_id:
                raise conflict(row)

    def update_item(self, row: Row, user_id: int, now: float, *,
                    name: str | None = None, parent_id: int | None = None,
                    description: str | Unset | None = UNSET,
                    private: bool | None = None, is_tracked: bool | None = None,
                    checkout: float | Unset | None = UNSET,
                    new_version: Callable[[], NewContent] | None = None,
                    version_notes: str | None = None,
                    conflict: Callable[[Row], JsonError]) -> Row:
        """Rename, move, re-describe, check out/in and/or add a version, in one change."""
        kind = str(row["kind"])
        scope = Scope(int(row["company_id"]), int(row["project_id"]))
        admin = self.is_admin(user_id, scope.company_id)
        holder = self.active_checkout(row, now) if kind == "file" else None
        checking_in_someone_else = (checkout is None and holder is not None
                                    and holder != user_id and admin)
        if not checking_in_someone_else:
            self.check_writable(row, user_id, now, conflict)
        elif row["is_deleted"]:
            raise errors(404, "File not found")
        target_parent = row["parent_id"] if parent_id is None else parent_id
        new_name = str(row["name"]) if name is None else name
        _check_name(new_name, kind)
        parent = self.target_folder(scope, int(target_parent), user_id)
        if kind == "folder" and parent_id is not None:
            lo, hi = subtree_bounds(str(row["idpath"]))
            if lo <= str(parent["idpath"]) < hi:
                raise field_errors(422, {"parent_id": [
                    "cannot be the folder itself or one of its subfolders"]})
        moved = int(parent["id"]) != int(row["parent_id"]) or new_name != row["name"]
        if moved and self._sibling(int(parent["id"]), kind, new_name, int(row["id"])):
            raise self._taken(kind)
        blob = new_version() if new_version is not None else None
        with self.tx() as db:
            if moved:
                self._relocate(row, parent, new_name)
            sets: list[str] = ["updated_at = ?"]
            args: list[object] = [now]
            if not isinstance(description, Unset):
                sets.append("description = ?")
                args.append(description)
            if private is not None:
                sets.append("private = ?")
                args.append(int(private))
            if is_tracked is not None:
                sets.append("is_tracked = ?")
                args.append(int(is_tracked))
            if not isinstance(checkout, Unset) and kind == "file":
                if checkout is None:
                    sets.append("checked_out_by = NULL, checked_out_until = NULL")
                else:
                    sets.append("checked_out_by = ?, checked_out_until = ?")
                    args.extend([user_id, checkout])
            db.execute(f"UPDATE items SET {', '.join(sets)} WHERE id = ?", (*args, row["id"]))
            if blob is not None:
                self._add_version(row, user_id, blob, version_notes, new_name, now)
        return self._item(int(row["id"]))

    def _relocate(self, row: Row, parent: Row, name: str) -> None:
        old_path, old_nwp = str(row["idpath"]), str(row["name_with_path"])
        new_path = f"{parent['idpath']}{row['id']}/"
        new_nwp = f"{parent['name_with_path']}/{name}"
        lo, hi = subtree_bounds(old_path)
        self.db.execute(
            "UPDATE items SET idpath = ? || substr(idpath, ?), "
            "name_with_path = ? || substr(name_with_path, ?) "
            "WHERE idpath >= ? AND idpath < ?",
            (new_path, len(old_path) + 1, new_nwp, len(old_nwp) + 1, lo, hi))
        self.db.execute("UPDATE items SET parent_id = ?, name = ? WHERE id = ?",
                        (parent["id"], name, row["id"]))

    def _add_version(self, row: Row, user_id: int, blob: NewContent, notes: str | None,
                     name: str, now: float) -> int:
        top = self.one("SELECT MAX(number) AS n FROM versions WHERE file_id = ?", (row["id"],))
        number = int(top["n"] or 0) + 1 if top is not None else 1
        vid = self._insert_version(int(row["id"]), number, name, blob.key, blob.size,
                                   blob.sha256, now, user_id, notes)
        self.db.execute("UPDATE items SET updated_at = ? WHERE id = ?", (now, row["id"]))
        return vid

    def add_version(self, row: Row, user_id: int, now: float,
                    content: Callable[[], NewContent], notes: str | None,
                    name: str | None, conflict: Callable[[Row], JsonError]) -> Row:
        self.check_writable(row, user_id, now, conflict)
        blob = content()
        with self.tx():
            vid = self._add_version(row, user_id, blob, notes, name or str(row["name"]), now)
        version = self.version(vid)
        assert version is not None
        return version

    def delete_item(self, row: Row, user_id: int, now: float,
                    conflict: Callable[[Row], JsonError]) -> None:
        """To the recycle bin: the item and its subtree get ``is_deleted``, ids are kept."""
        self.check_writable(row, user_id, now, conflict)
        lo, hi = subtree_bounds(str(row["idpath"]))
        with self.tx() as db:
            db.execute("UPDATE items SET is_deleted = 1, updated_at = ? "
                       "WHERE idpath >= ? AND idpath < ? AND is_deleted = 0", (now, lo, hi))
            db.execute("UPDATE items SET deleted_root = 1 WHERE id = ?", (row["id"],))

    # -- the flat index ------------------------------------------------------------------------

    def documents(self, scope: Scope, user_id: int, where: list[str], args: list[object],
                  order: str, limit: int, offset: int,
                  include_root: bool = False) -> tuple[int, list[Row]]:
        """One page of the flat index; the root folder is the scope itself, so it is listed
        only when asked for by ``filters[folder_id]`` (inferred, procore-api.md §4.5)."""
        root, _ = self.scope_root(scope)
        clauses = ["i.company_id = ?", "i.project_id = ?", *where]
        params: list[object] = [scope.company_id, scope.project_id, *args]
        if not include_root:
            clauses.append("i.id != ?")
            params.append(root)
        for hidden in self.hidden_roots(scope, user_id):
            lo, hi = subtree_bounds(str(hidden["idpath"]))
            clauses.append("NOT (i.idpath >= ? AND i.idpath < ?)")
            params.extend([lo, hi])
        sql_where = " AND ".join(clauses)
        total_row = self.one(f"SELECT COUNT(*) AS n FROM items i WHERE {sql_where}", params)
        total = int(total_row["n"]) if total_row is not None else 0
        rows = self.all(f"SELECT i.* FROM items i WHERE {sql_where} ORDER BY {order} "
                        f"LIMIT ? OFFSET ?", [*params, limit, offset])
        return total, rows


def _check_name(name: str, kind: str) -> None:
    if not name or not name.strip():
        raise field_errors(400 if kind == "folder" else 422, {"name": ["can't be blank"]})


def seed_versions(seed: Seed) -> Iterator[tuple[SeedKey, SeedVersion]]:
    """Every version of a seed with the key ``load_seed`` looks its blob up by."""
    def walk(folder: SeedFolder, key: SeedKey) -> Iterator[tuple[SeedKey, SeedVersion]]:
        for child in folder.children:
            child_key = (*key, child.name)
            if isinstance(child, SeedFolder):
                yield from walk(child, child_key)
            else:
                for index, version in enumerate(child.versions):
                    yield (*child_key, index), version

    for company in seed.companies:
        yield from walk(company.documents, (company.id, 0))
        for project in company.projects:
            yield from walk(project.documents, (company.id, project.id))


def seed_blobs(seed: Seed, blobs: BlobStore,
               cache: dict[object, BlobRef] | None = None) -> dict[SeedKey, BlobRef]:
    """Write every seed version's content to the blob store (blocking: run it in a thread).

    Contents that name their bytes (a ``key`` attribute, as samples.GeneratedContent does) are
    remembered in ``cache`` within one process, so resetting to the same seed again neither
    regenerates nor rehashes them.
    """
    refs: dict[SeedKey, BlobRef] = {}
    for key, version in seed_versions(seed):
        content_key = getattr(version.content, "key", None)
        cached = cache.get(content_key) if cache is not None and content_key else None
        if cached is not None and blobs.exists(cached.key):
            refs[key] = cached
            continue
        ref = blobs.put_chunks(version.content())
        refs[key] = ref
        if cache is not None and content_key:
            cache[content_key] = ref
    return refs


def _id_list(value: str | None) -> list[int]:
    if not value:
        return []
    return [int(part) for part in value.split(",") if part.strip().isdigit()]
