"""The metadata cache: folder listings, companies, projects and negative lookups, with TTLs.

One ``GET /folders/{id}`` (the client's ``folder()``/``root_folder()``) fills the listing of
one folder; lookups of a name go through the parent's listing, so a probe for ``desktop.ini``
never costs a request once the parent is listed, and a negative entry (cachetools
``TTLCache``) answers for a while even after the parent's listing has expired or been evicted.

Freshness. A listing answers without a request while ``now < fresh_until``. A fetch sets it to
``now + ttl``; a successful poll of the scope's ``/documents`` index (``poller.py``) applies
what changed to exactly the affected listings and then extends every listing of that scope to
``poll start + ttl``, so a quiet tree costs one poll per scope instead of one request per
folder. No listing is trusted for longer than ``max_trust`` after it was fetched, whatever the
poller says, because a permanent purge leaves no trace in the index.

Watermarks. For each scope, the poller's window starts at ``watermark - overlap``. The
watermark is Procore's own ``updated_at`` of the newest change a poll returned, so the window
does not depend on the local clock; before the first poll it is the local time of the first
fetch in that scope minus a generous ``SKEW_MARGIN``. It only moves forward with poll results,
never with listings, so a change can only be missed if it is older than a poll that succeeded.

Offline. A fetch that fails with ``NetworkError`` returns the last listing seen (from memory or
from the on-disk copy in ``metastore.py``), logging once that the mount is offline; only what
was never seen answers ``EHOSTUNREACH``.

Concurrency: ``_lock`` guards every dict here and is never held across a client call; fetches
of the same folder are single-flighted (the first caller fetches, the others wait for its
result). Each folder has a generation number, bumped by our own changes, so a fetch that was
in flight across one of our changes does not overwrite the newer state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from cachetools import LRUCache, TTLCache

from procorefs.api import Priority, Scope
from procorefs.api.errors import ApiError, Forbidden, NetworkError, NotFound
from procorefs.api.models import Company, DocumentEntry, Project
from procorefs.clock import Clock
from procorefs.core.metastore import MetadataStore
from procorefs.core.names import NameCodec, lookup_key
from procorefs.core.remote import (
    Item,
    Listing,
    RemoteClient,
    children_of,
    scope_from_key,
    scope_key,
)
from procorefs.core.translate import translate
from procorefs.errors import FsAccessDenied, FsError, FsOffline

log = logging.getLogger("procorefs.core")

T = TypeVar("T")
ListingKey = tuple[Scope, int]
DirKey = Hashable

OFFLINE_RETRY = 10.0
"""Seconds an offline mount answers from what it has before it tries Procore again."""
SKEW_MARGIN = 600.0
"""Seconds the local clock may run ahead of Procore's before a first poll could miss a change."""
_NEVER = float("-inf")


class _Flight(Generic[T]):
    """One fetch in progress; other callers wait for its outcome instead of fetching again."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self.waiters = 0  # callers sharing this fetch (tests and debugging)

    def finish(self, value: T) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def wait(self) -> T:
        self._done.wait()
        if self._error is not None:
            err = self._error
            if isinstance(err, FsError):
                raise type(err)(err.strerror or "", err.filename) from err
            raise err
        return cast(T, self._value)


class _ListingLRU(LRUCache[ListingKey, Listing]):
    """An LRU of listings that tells its owner what it evicts (to keep the child index right)."""

    def __init__(self, maxsize: int, on_evict: Callable[[ListingKey, Listing], None]) -> None:
        super().__init__(maxsize=maxsize)
        self._on_evict = on_evict

    def popitem(self) -> tuple[ListingKey, Listing]:
        key, value = super().popitem()
        self._on_evict(key, value)
        return key, value


@dataclass(frozen=True, slots=True)
class _Value(Generic[T]):
    fetched_at: float
    value: T


def _company_json(c: Company) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "active": c.is_active}


def _project_json(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "display_name": p.display_name,
            "company_id": p.company_id, "active": p.active}


def folder_dir_key(scope: Scope, folder_id: int) -> DirKey:
    """The negative-cache key of a remote folder (scope roots included)."""
    return ("f", scope, folder_id)


def company_dir_key(company_id: int) -> DirKey:
    """The negative-cache key of a synthetic company directory (documents + projects)."""
    return ("c", company_id)


class MetadataCache:
    def __init__(self, client: RemoteClient, clock: Clock, codec: NameCodec, *, ttl: float,
                 negative_ttl: float, store: MetadataStore | None,
                 max_listings: int = 20_000, max_trust: float = 3600.0) -> None:
        self._client = client
        self._clock = clock
        self._codec = codec
        self.ttl = ttl
        self.max_trust = max(max_trust, ttl)
        self._store = store
        self._lock = threading.Lock()
        self._listings = _ListingLRU(max_listings, self._evicted)
        self._parent: dict[ListingKey, int] = {}  # (scope, child id) -> parent folder id
        self._roots: dict[Scope, int] = {}
        self._gen: dict[ListingKey, int] = {}
        self._inflight: dict[Hashable, _Flight[Any]] = {}
        self._negative: TTLCache[tuple[DirKey, str], bool] = TTLCache(
            maxsize=50_000, ttl=negative_ttl, timer=clock.monotonic)
        self._scope_access: dict[Scope, float] = {}
        self._watermarks: dict[Scope, float] = {}
        self._companies: _Value[list[Company]] | None = None
        self._projects: dict[int, _Value[list[Project]]] = {}
        self._me: int | None = None
        self._dirty: set[ListingKey] = set()
        self._dropped: set[ListingKey] = set()
        self._values_dirty = False
        self._offline = False
        self._offline_until = _NEVER
        self._forbidden: dict[Scope, float] = {}
        self._flush_lock = threading.Lock()
        if store is not None:
            self._load(store)

    # ------------------------------------------------------------------ disk

    def _load(self, store: MetadataStore) -> None:
        now, wall = self._clock.monotonic(), self._clock.time()
        values = store.load_values()
        try:
            self._roots = {scope_from_key(k): int(v) for k, v in values.get("roots", {}).items()}
            self._watermarks = {scope_from_key(k): float(v)
                                for k, v in values.get("watermarks", {}).items()}
            raw_companies = values.get("companies")
            if isinstance(raw_companies, list):
                self._companies = _Value(_NEVER, [
                    Company(id=int(c["id"]), name=str(c["name"]), is_active=bool(c["active"]))
                    for c in raw_companies])
            for cid, plist in values.get("projects", {}).items():
                self._projects[int(cid)] = _Value(_NEVER, [
                    Project(id=int(p["id"]), name=str(p["name"]),
                            display_name=str(p["display_name"]), company_id=p.get("company_id"),
                            active=bool(p["active"])) for p in plist])
            me = values.get("me")
            self._me = int(me) if me is not None else None
        except (KeyError, TypeError, ValueError, AttributeError):
            log.info("ignoring saved metadata values in an unexpected shape")
        loaded = 0
        for skey, _folder_id, fetched_wall, data in store.load_listings():
            try:
                scope = scope_from_key(skey)
                folder = Item.from_json(data["folder"])
                children = {int(c["id"]): Item.from_json(c) for c in data["children"]}
            except (KeyError, TypeError, ValueError):
                continue
            age = max(0.0, wall - fetched_wall)
            listing = Listing.build(scope, folder, children, self._codec, now - age, _NEVER)
            self._put(listing)
            self._scope_access[scope] = now
            loaded += 1
        self._dirty.clear()
        if loaded:
            log.info("loaded %d saved folder listings", loaded)

    def flush(self) -> None:
        """Write what changed since the last flush to disk, in one transaction."""
        if self._store is None:
            return
        with self._flush_lock:
            with self._lock:
                listings = [self._listings[k] for k in self._dirty if k in self._listings]
                dropped = [k for k in self._dropped if k not in self._listings]
                self._dirty.clear()
                self._dropped.clear()
                values: dict[str, Any] = {}
                if self._values_dirty:
                    self._values_dirty = False
                    values = self._values_snapshot()
            if not listings and not dropped and not values:
                return
            now, wall = self._clock.monotonic(), self._clock.time()
            rows = [(scope_key(lst.scope), lst.folder.id, wall - (now - lst.fetched_at),
                     {"folder": lst.folder.to_json(),
                      "children": [c.to_json() for c in lst.children.values()]})
                    for lst in listings]
            self._store.write(rows, [(scope_key(s), f) for s, f in dropped], values)

    def _values_snapshot(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "roots": {scope_key(s): i for s, i in self._roots.items()},
            "watermarks": {scope_key(s): w for s, w in self._watermarks.items()},
            "projects": {str(cid): [_project_json(p) for p in v.value]
                         for cid, v in self._projects.items()},
            "me": self._me,
        }
        if self._companies is not None:
            values["companies"] = [_company_json(c) for c in self._companies.value]
        return values

    # ------------------------------------------------------------- internals

    def _put(self, listing: Listing) -> None:
        """Store a listing and index its children (caller holds ``_lock``)."""
        key = (listing.scope, listing.folder.id)
        old = self._listings.get(key)
        if old is not None:
            self._unindex(key, old)
        self._listings[key] = listing
        for child_id in listing.children:
            self._parent[(listing.scope, child_id)] = listing.folder.id
        if self._negative:
            # A name that exists now must not be answered "absent" by an older probe.
            dkeys = [folder_dir_key(listing.scope, listing.folder.id)]
            if listing.scope.project_id is None and \
                    self._roots.get(listing.scope) == listing.folder.id:
                dkeys.append(company_dir_key(listing.scope.company_id))
            for dkey in dkeys:
                for name_key in listing.by_key:
                    self._negative.pop((dkey, name_key), None)
        self._dirty.add(key)
        self._dropped.discard(key)

    def _unindex(self, key: ListingKey, listing: Listing) -> None:
        scope, folder_id = key
        for child_id in listing.children:
            if self._parent.get((scope, child_id)) == folder_id:
                del self._parent[(scope, child_id)]

    def _evicted(self, key: ListingKey, listing: Listing) -> None:
        self._unindex(key, listing)
        self._dirty.discard(key)
        self._dropped.add(key)

    def _drop(self, key: ListingKey) -> None:
        listing = self._listings.pop(key, None)
        if listing is not None:
            self._evicted(key, listing)

    def _bump(self, key: ListingKey) -> None:
        self._gen[key] = self._gen.get(key, 0) + 1

    def _fresh(self, listing: Listing, now: float) -> bool:
        return now < listing.fresh_until and now - listing.fetched_at < self.max_trust

    def _join(self, key: Hashable) -> tuple[_Flight[Any], bool]:
        with self._lock:
            flight = self._inflight.get(key)
            if flight is not None:
                flight.waiters += 1
                return flight, False
            flight = _Flight()
            self._inflight[key] = flight
            return flight, True

    def _land(self, key: Hashable) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _offline_error(self, exc: NetworkError, action: str, what: str) -> FsError:
        """The error for an offline call nothing cached can answer; logs only the first one."""
        with self._lock:
            first = not self._offline
            self._offline = True
            self._offline_until = self._clock.monotonic() + OFFLINE_RETRY
        if first:
            return translate(exc, action, what)
        log.debug("still offline: cannot %s %r", action, what)
        return FsOffline(f"cannot {action} {what!r}: Procore cannot be reached (offline?)", what)

    def _serving_stale(self, what: str) -> None:
        with self._lock:
            first = not self._offline
            self._offline = True
            self._offline_until = self._clock.monotonic() + OFFLINE_RETRY
        if first:
            log.warning("Procore cannot be reached; showing %r and other folders as last seen",
                        what)

    def _online(self) -> None:
        if self._offline:
            with self._lock:
                was, self._offline = self._offline, False
                self._offline_until = _NEVER
            if was:
                log.info("Procore can be reached again")

    def note_offline(self) -> None:
        """Procore is known to be unreachable (a failed probe at start): answer from what is
        cached for a while instead of trying each folder first."""
        with self._lock:
            self._offline = True
            self._offline_until = self._clock.monotonic() + OFFLINE_RETRY

    @property
    def offline(self) -> bool:
        return self._offline

    def sharing(self) -> int:
        """How many callers are waiting for fetches that another caller is making."""
        with self._lock:
            return sum(f.waiters for f in self._inflight.values())

    # -------------------------------------------------------------- listings

    def root_id(self, scope: Scope) -> int | None:
        with self._lock:
            return self._roots.get(scope)

    def cached(self, scope: Scope, folder_id: int) -> Listing | None:
        """The listing in memory, fresh or not, without any request."""
        with self._lock:
            return self._listings.get((scope, folder_id))

    def is_fresh(self, listing: Listing) -> bool:
        return self._fresh(listing, self._clock.monotonic())

    def listing(self, scope: Scope, folder_id: int | None, *, what: str,
                refresh: bool = False, quiet_forbidden: bool = False) -> Listing:
        """The listing of a folder (``None``: the scope's root), fetching it when not fresh.

        ``refresh`` forces a request (for decisions such as rmdir's emptiness check).
        """
        now = self._clock.monotonic()
        with self._lock:
            self._scope_access[scope] = now
            fid = folder_id if folder_id is not None else self._roots.get(scope)
            cached = self._listings.get((scope, fid)) if fid is not None else None
            if cached is not None and not refresh and self._fresh(cached, now):
                return cached
            if now < self._offline_until:
                if cached is not None:
                    return cached
                raise FsOffline(f"cannot list {what!r}: Procore cannot be reached (offline?)",
                                what)
        return self._fetch(scope, fid, cached, what, quiet_forbidden)

    def optional_root(self, scope: Scope, what: str) -> Listing | None:
        """A scope's root listing, or None if this user may not see that scope's Documents
        (a company whose company-level Documents are closed to them, say)."""
        now = self._clock.monotonic()
        with self._lock:
            if now < self._forbidden.get(scope, _NEVER):
                return None
        try:
            return self.listing(scope, None, what=what, quiet_forbidden=True)
        except FsAccessDenied:
            with self._lock:
                self._forbidden[scope] = now + self.ttl
            return None

    def _fetch(self, scope: Scope, fid: int | None, cached: Listing | None,
               what: str, quiet_forbidden: bool) -> Listing:
        flight_key = ("listing", scope, fid)
        flight, owner = self._join(flight_key)
        if not owner:
            shared: Listing = flight.wait()
            return shared
        try:
            listing = self._fetch_now(scope, fid, cached, what, quiet_forbidden)
        except BaseException as exc:
            flight.fail(exc)
            raise
        else:
            flight.finish(listing)
            return listing
        finally:
            self._land(flight_key)

    def _fetch_now(self, scope: Scope, fid: int | None, cached: Listing | None,
                   what: str, quiet_forbidden: bool) -> Listing:
        with self._lock:
            gen = self._gen.get((scope, fid), 0) if fid is not None else 0
        started = self._clock.monotonic()
        try:
            if fid is None:
                folder = self._client.root_folder(scope, priority=Priority.INTERACTIVE)
            else:
                folder = self._client.folder(scope, fid, priority=Priority.INTERACTIVE)
        except NetworkError as exc:
            if cached is not None:
                self._serving_stale(what)
                return cached
            raise self._offline_error(exc, "list", what) from exc
        except NotFound as exc:
            if fid is not None:
                self.forget_folder(scope, fid)
            raise translate(exc, "list", what) from exc
        except Forbidden as exc:
            if quiet_forbidden:
                log.debug("no access to the Documents of %s", scope)
                raise FsAccessDenied(f"cannot list {what!r}: no permission", what) from exc
            raise translate(exc, "list", what) from exc
        except ApiError as exc:
            raise translate(exc, "list", what) from exc
        self._online()
        listing = Listing.build(scope, Item.of_folder(folder), children_of(folder), self._codec,
                                started, started + self.ttl)
        with self._lock:
            if fid is None:
                self._roots[scope] = folder.id
                self._values_dirty = True
            if scope not in self._watermarks:
                self._watermarks[scope] = self._clock.time() - SKEW_MARGIN
                self._values_dirty = True
            if self._gen.get((scope, folder.id), 0) == gen:
                self._put(listing)
        return listing

    def forget_folder(self, scope: Scope, folder_id: int) -> None:
        """A folder is gone: drop its listing and let its parent's listing be fetched again."""
        with self._lock:
            key = (scope, folder_id)
            self._bump(key)
            self._drop(key)
            parent = self._parent.get(key)
            if parent is not None:
                plist = self._listings.get((scope, parent))
                if plist is not None:
                    self._listings[(scope, parent)] = plist.with_freshness(_NEVER)

    def invalidate(self, scope: Scope | None = None, folder_id: int | None = None) -> None:
        """Make listings ask again on next use (they still answer offline). None: all of them."""
        with self._lock:
            for key, listing in list(self._listings.items()):
                if scope is not None and (key[0] != scope or
                                          (folder_id is not None and key[1] != folder_id)):
                    continue
                self._listings[key] = listing.with_freshness(_NEVER)
                self._bump(key)
            if scope is None:
                self._negative.clear()
                self._companies = (_Value(_NEVER, self._companies.value)
                                   if self._companies is not None else None)
                self._projects = {c: _Value(_NEVER, v.value) for c, v in self._projects.items()}
            elif folder_id is not None:
                dkey = folder_dir_key(scope, folder_id)
                for nkey in [k for k in self._negative if k[0] == dkey]:
                    self._negative.pop(nkey, None)

    # ------------------------------------------------------- negative cache

    def is_negative(self, dir_key: DirKey, local: str) -> bool:
        with self._lock:
            return (dir_key, lookup_key(self._codec, local)) in self._negative

    def add_negative(self, dir_key: DirKey, local: str) -> None:
        with self._lock:
            self._negative[(dir_key, lookup_key(self._codec, local))] = True

    def drop_negative(self, dir_key: DirKey, local: str) -> None:
        with self._lock:
            self._negative.pop((dir_key, lookup_key(self._codec, local)), None)

    def _drop_negative_remote(self, scope: Scope, parent_id: int, remote_name: str) -> None:
        key = lookup_key(self._codec, self._codec.to_local(remote_name))
        self._negative.pop((folder_dir_key(scope, parent_id), key), None)
        if scope.project_id is None and self._roots.get(scope) == parent_id:
            self._negative.pop((company_dir_key(scope.company_id), key), None)

    # ---------------------------------------------------------- own changes

    def note_created(self, scope: Scope, parent_id: int, item: Item) -> None:
        """We created ``item`` under ``parent_id``: show it at once, without a request."""
        now = self._clock.monotonic()
        with self._lock:
            pkey = (scope, parent_id)
            self._bump(pkey)
            plist = self._listings.get(pkey)
            if plist is not None:
                children = dict(plist.children)
                children[item.id] = item
                self._put(plist.with_children(children))
            self._drop_negative_remote(scope, parent_id, item.name)
            if item.kind == "dir":
                self._bump((scope, item.id))
                self._put(Listing.build(scope, item, {}, self._codec, now, now + self.ttl))

    def note_moved(self, scope: Scope, before: Item, after: Item) -> None:
        """We renamed and/or moved an item; its id (and a folder's listing) stay the same."""
        with self._lock:
            if before.parent_id is not None:
                okey = (scope, before.parent_id)
                self._bump(okey)
                olist = self._listings.get(okey)
                if olist is not None and before.id in olist.children:
                    children = dict(olist.children)
                    del children[before.id]
                    self._put(olist.with_children(children))
            if after.parent_id is not None:
                nkey = (scope, after.parent_id)
                self._bump(nkey)
                nlist = self._listings.get(nkey)
                if nlist is not None:
                    children = dict(nlist.children)
                    children[after.id] = after.merged_into_old(nlist.children.get(after.id))
                    self._put(nlist.with_children(children))
                self._drop_negative_remote(scope, after.parent_id, after.name)
            if after.kind == "dir":
                own = self._listings.get((scope, after.id))
                if own is not None:
                    self._put(own.with_folder(after))

    def note_removed(self, scope: Scope, item: Item) -> None:
        """We moved ``item`` to the recycle bin."""
        with self._lock:
            if item.parent_id is not None:
                pkey = (scope, item.parent_id)
                self._bump(pkey)
                plist = self._listings.get(pkey)
                if plist is not None and item.id in plist.children:
                    children = dict(plist.children)
                    del children[item.id]
                    self._put(plist.with_children(children))
            if item.kind == "dir":
                self._bump((scope, item.id))
                self._drop((scope, item.id))

    def find_item(self, scope: Scope, item_id: int) -> Item | None:
        """An item as a cached listing shows it (no request), or None."""
        with self._lock:
            parent = self._parent.get((scope, item_id))
            if parent is None:
                return None
            listing = self._listings.get((scope, parent))
            return listing.children.get(item_id) if listing is not None else None

    def note_removed_id(self, scope: Scope, item_id: int) -> None:
        """We deleted the item with this id (a deferred delete went out)."""
        item = self.find_item(scope, item_id)
        if item is not None:
            self.note_removed(scope, item)

    # ---------------------------------------------------------------- poller

    def scopes_to_poll(self, idle_after: float) -> list[Scope]:
        """Scopes with listings that someone used within ``idle_after`` seconds."""
        now = self._clock.monotonic()
        with self._lock:
            cached = {key[0] for key in self._listings}
            return [s for s in cached if now - self._scope_access.get(s, _NEVER) < idle_after]

    def watermark(self, scope: Scope) -> float:
        with self._lock:
            mark = self._watermarks.get(scope)
            if mark is None:
                mark = self._clock.time() - SKEW_MARGIN
                self._watermarks[scope] = mark
                self._values_dirty = True
            return mark

    def apply_changes(self, scope: Scope, docs: Iterable[DocumentEntry],
                      poll_started: float) -> int:
        """Apply one poll's results to exactly the listings they touch; returns how many.

        ``poll_started`` is the monotonic time the poll began: every listing of the scope is
        known to be current as of then, so each may answer for ``ttl`` more from that moment.
        """
        latest: dict[int, DocumentEntry] = {}
        for doc in docs:
            prev = latest.get(doc.id)
            if prev is None or (doc.updated_at or datetime.min.replace(tzinfo=UTC)) >= (
                    prev.updated_at or datetime.min.replace(tzinfo=UTC)):
                latest[doc.id] = doc
        changed = 0
        with self._lock:
            for doc in latest.values():
                changed += self._apply_one(scope, doc)
            stamps = [d.updated_at.timestamp() for d in latest.values() if d.updated_at]
            mark = self._watermarks.get(scope, _NEVER)
            if stamps and max(stamps) > mark:
                self._watermarks[scope] = max(stamps)
                self._values_dirty = True
            until = poll_started + self.ttl
            for key, listing in list(self._listings.items()):
                if key[0] == scope and listing.fresh_until < until and \
                        poll_started - listing.fetched_at < self.max_trust:
                    self._listings[key] = listing.with_freshness(until)
        if changed:
            log.debug("applied %d remote changes in %s", changed, scope)
        return changed

    def _apply_one(self, scope: Scope, doc: DocumentEntry) -> int:
        hidden = doc.is_deleted or doc.is_recycle_bin
        item = Item.of_document(doc)
        old_parent = self._parent.get((scope, doc.id))
        changed = 0
        if item.kind == "file" and item.version is None and not hidden:
            # The index row does not say which version is current: ask again instead.
            for pid in {old_parent, doc.parent_id}:
                if pid is not None and (scope, pid) in self._listings:
                    self._listings[(scope, pid)] = \
                        self._listings[(scope, pid)].with_freshness(_NEVER)
                    changed = 1
            return changed
        if old_parent is not None and (hidden or old_parent != doc.parent_id):
            olist = self._listings.get((scope, old_parent))
            if olist is not None and doc.id in olist.children:
                children = dict(olist.children)
                del children[doc.id]
                self._put(olist.with_children(children))
                changed = 1
        if not hidden and doc.parent_id is not None:
            nlist = self._listings.get((scope, doc.parent_id))
            if nlist is not None:
                old = nlist.children.get(doc.id)
                if old is None or not _same(old, item):
                    children = dict(nlist.children)
                    children[doc.id] = item.merged_into_old(old)
                    self._put(nlist.with_children(children))
                    changed = 1
            self._drop_negative_remote(scope, doc.parent_id, doc.name)
        if item.kind == "dir":
            own = self._listings.get((scope, doc.id))
            if own is not None:
                if hidden:
                    self._drop((scope, doc.id))
                    changed = 1
                elif not _same(own.folder, item):
                    self._put(own.with_folder(item.merged_into_old(own.folder)))
                    changed = 1
        return changed

    # ------------------------------------------------- companies and projects

    def _value(self, key: Hashable, current: Callable[[], _Value[T] | None],
               fetch: Callable[[], T], store: Callable[[_Value[T]], None],
               what: str) -> T:
        now = self._clock.monotonic()
        with self._lock:
            held = current()
            if held is not None and now - held.fetched_at < self.ttl:
                return held.value
        flight, owner = self._join(key)
        if not owner:
            result: T = flight.wait()
            return result
        try:
            started = self._clock.monotonic()
            try:
                value = fetch()
            except NetworkError as exc:
                if held is not None:
                    self._serving_stale(what)
                    flight.finish(held.value)
                    return held.value
                raise self._offline_error(exc, "list", what) from exc
            except ApiError as exc:
                raise translate(exc, "list", what) from exc
            self._online()
            with self._lock:
                store(_Value(started, value))
                self._values_dirty = True
            flight.finish(value)
            return value
        except BaseException as exc:
            flight.fail(exc)
            raise
        finally:
            self._land(key)

    def companies(self, what: str) -> list[Company]:
        def put(v: _Value[list[Company]]) -> None:
            self._companies = v
        return self._value(("companies",), lambda: self._companies, self._client.companies,
                           put, what)

    def projects(self, company_id: int, what: str) -> list[Project]:
        def put(v: _Value[list[Project]]) -> None:
            self._projects[company_id] = v
        return self._value(("projects", company_id), lambda: self._projects.get(company_id),
                           lambda: self._client.projects(company_id), put, what)

    def me(self) -> int | None:
        """The signed-in user's id (once per cache, then from disk); None if unknown offline."""
        with self._lock:
            if self._me is not None:
                return self._me
        flight, owner = self._join(("me",))
        if not owner:
            return flight.wait()  # type: ignore[no-any-return]
        try:
            try:
                user = self._client.me()
            except ApiError as exc:
                log.debug("could not learn who is signed in: %s", exc)
                flight.finish(None)
                return None
            with self._lock:
                self._me = user.id
                self._values_dirty = True
            flight.finish(user.id)
            return user.id
        finally:
            self._land(("me",))


def _same(a: Item, b: Item) -> bool:
    """Equal as far as a listing shows them (``created`` may be missing from one view)."""
    return (a.kind, a.name, a.parent_id, a.size, a.updated, a.read_only, a.version_number,
            a.version.id if a.version else None,
            a.checked_out_by.id if a.checked_out_by else None, a.checked_out_until) == (
        b.kind, b.name, b.parent_id, b.size, b.updated, b.read_only, b.version_number,
        b.version.id if b.version else None,
        b.checked_out_by.id if b.checked_out_by else None, b.checked_out_until)
