"""Speaks Procore's REST API over HTTP (httpx, keyring); knows nothing of filesystems."""
