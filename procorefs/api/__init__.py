"""Speaks Procore's REST API over HTTP (httpx, keyring); knows nothing of filesystems.

The public surface is re-exported here; everything else in the package is implementation.
"""

from procorefs.api.client import ProcoreClient, Scope
from procorefs.api.errors import (
    ALL_API_ERRORS,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    InvalidResponse,
    NetworkError,
    NotFound,
    NotSignedIn,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.api.models import (
    Company,
    DocumentEntry,
    File,
    FileVersion,
    Folder,
    Project,
    Upload,
    User,
    UserRef,
)
from procorefs.api.ratelimit import Priority, RateLimitStatus
from procorefs.api.tokens import KeyringUnavailable
from procorefs.api.uploads import PartDigest, UploadState

__all__ = [
    "ALL_API_ERRORS", "ApiError", "Company", "Conflict", "DocumentEntry", "File", "FileVersion",
    "Folder", "Forbidden", "Gone", "InvalidResponse", "KeyringUnavailable", "NetworkError",
    "NotFound", "NotSignedIn", "PartDigest", "Priority", "ProcoreClient", "Project",
    "RateLimitStatus", "RateLimited", "Scope", "ServerError", "Unauthorized", "Upload",
    "UploadState", "User", "UserRef", "ValidationFailed",
]
