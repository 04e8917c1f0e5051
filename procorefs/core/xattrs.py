"""Extended attributes for scripts: ``user.procore.*`` values of a file or folder.

``security.*``, ``system.*`` and ``trusted.*`` names are answered by ``is_os_namespace`` before
any lookup: the kernel asks for ``security.capability`` on every write and for
``security.selinux``/``system.posix_acl_*`` on every ``ls -l`` entry, and answering those with
I/O halves small-write speed and triples ``ls -lR`` time (``shared/fuse-notes.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

PREFIX = "user.procore."
ID = PREFIX + "id"
VERSION = PREFIX + "version"
WEB_URL = PREFIX + "web_url"
CHECKED_OUT_BY = PREFIX + "checked_out_by"
CHECKED_OUT_UNTIL = PREFIX + "checked_out_until"
COMPANY_ID = PREFIX + "company_id"
PROJECT_ID = PREFIX + "project_id"
STATE = PREFIX + "state"
"""Files the mount holds locally: ``local-only`` (never uploaded), ``pending`` (waiting to be
saved to Procore) or ``failed`` (saving failed; ``procorefs status`` says why)."""

_OS_NAMESPACES = ("security.", "system.", "trusted.")


def is_os_namespace(name: str) -> bool:
    return name.startswith(_OS_NAMESPACES)


def web_base(api_url: str) -> str:
    """The Procore web app's origin for an API origin (``api.procore.com`` -> ``app.``)."""
    parts = urlsplit(api_url)
    host = parts.netloc
    if host.startswith("api."):
        host = "app." + host[len("api."):]
    elif host.startswith("api-"):  # api-monthly.procore.com and the like
        host = host[len("api-"):]
    return f"{parts.scheme or 'https'}://{host}"


def web_url(api_url: str, company_id: int, project_id: int | None, *,
            folder_id: int | None = None, file_id: int | None = None) -> str:
    """A link to the item in Procore's web app.

    Procore does not document its web app's URLs; these follow the shape the app shows in the
    address bar for the Documents tool and may need adjusting if Procore changes them.
    """
    base = web_base(api_url)
    if project_id is not None:
        root = f"{base}/{project_id}/project/documents"
    else:
        root = f"{base}/{company_id}/company/documents"
    if file_id is not None:
        return f"{root}/files/{file_id}"
    if folder_id is not None:
        return f"{root}?folder_id={folder_id}"
    return root


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode(values: Mapping[str, str]) -> dict[str, bytes]:
    return {k: v.encode("utf-8") for k, v in values.items()}
