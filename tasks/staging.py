"""Staging, where the sync puts received files and the import reads them: a local path, or any fsspec
URL (`s3://bucket/staging` when workers run on several machines).

Every access goes through `staging_fs`, which turns off fsspec's listings cache: on shared staging
another machine's sync writes where this process listed before, and a cached listing hides what it
wrote for the life of the process (s3fs then finds no such file, or sweeps no crashed copy)."""

from __future__ import annotations

import posixpath

import fsspec
from fsspec.spec import AbstractFileSystem


def staging_fs(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem of a staging URL or path, and the path within it; its listings are never cached."""
    fs, path = fsspec.core.url_to_fs(url, use_listings_cache=False)
    return fs, path


def staged_url(staging_url: str, client: str, name: str) -> str:
    """Where the sync stages a client's file and the import reads it: `<staging>/<client>/<name>`."""
    return posixpath.join(staging_url.rstrip("/"), client, name)
