"""Data roots on S3-compatible object storage: the URI, the client, and errors that say what is wrong.

``TIER_ASSETS_DATA_ROOT=s3://bucket/prefix`` puts the tiers (``tiers/``, ``rejected/``) in the bucket;
the endpoint and credentials come from the environment (``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``; without keys,
pyarrow's default AWS chain). Everything that cannot live in a bucket (batch manifests, the inbox,
caches, indexes, classifiers, logs, reports, exports, the catalog) goes to a local state directory
derived from the URI: ``$TIER_ASSETS_STATE_DIR/s3/{bucket}/{prefix}`` (default base
``~/.cache/tier_assets``). Client errors become one :class:`ObjectStoreError` line naming the bucket,
the endpoint and what is wrong (refused credentials, unreachable endpoint, missing bucket).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

SCHEME = "s3"
STATE_DIR_ENV = "TIER_ASSETS_STATE_DIR"
_CREDENTIAL_CODES = ("INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "ACCESS_DENIED", "EXPIRED_TOKEN",
                     "INVALID_CLIENT_TOKEN_ID", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                     "ExpiredToken")
_NETWORK_CODES = ("NETWORK_CONNECTION", "Could not connect", "curlCode", "Couldn't resolve host")


class ObjectStoreError(RuntimeError):
    """Object storage refused or could not serve a request; the message is one line that says why."""


def is_uri(text: str) -> bool:
    return "://" in text


@lru_cache(maxsize=8)
def _filesystem(endpoint: str | None, region: str | None, key: str | None, secret: str | None,
                token: str | None) -> pafs.S3FileSystem:
    options: dict = {"region": region or "us-east-1", "connect_timeout": 5, "request_timeout": 60,
                     "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    if endpoint:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = endpoint
        options["scheme"] = parsed.scheme or "https"
    if key and secret:
        options.update(access_key=key, secret_key=secret, session_token=token)
    return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class ObjectRoot:
    """``s3://bucket/prefix``: where a data root's tiers live in a bucket."""

    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's top

    @classmethod
    def parse(cls, uri: str) -> ObjectRoot:
        parsed = urlparse(uri)
        if parsed.scheme != SCHEME or not parsed.netloc:
            raise ObjectStoreError(f"data root {uri!r}: only s3://bucket/prefix URIs are supported")
        return cls(parsed.netloc, parsed.path.strip("/"))

    @property
    def uri(self) -> str:
        return f"{SCHEME}://{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}://{self.bucket}"

    @property
    def endpoint(self) -> str | None:
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None

    @property
    def filesystem(self) -> pafs.S3FileSystem:
        """The client for the current environment (a new one when the endpoint or keys change)."""
        env = os.environ
        return _filesystem(self.endpoint, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                           env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"),
                           env.get("AWS_SESSION_TOKEN"))

    def key(self, *parts: str) -> str:
        """``bucket/prefix/part/...``: the path pyarrow's S3 filesystem takes."""
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def state_dir(self) -> Path:
        """The local directory for what stays local (see the module docstring)."""
        base = os.environ.get(STATE_DIR_ENV) or Path.home() / ".cache" / "tier_assets"
        return (Path(base) / SCHEME / self.bucket / self.prefix).resolve()

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn a client error into one :class:`ObjectStoreError` line."""
        try:
            yield
        except ObjectStoreError:
            raise
        except OSError as exc:
            raise ObjectStoreError(self.describe(action, exc)) from exc

    def describe(self, action: str, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        where = f"{self.uri} (endpoint {self.endpoint or 'AWS default'})"
        if any(code in text for code in _CREDENTIAL_CODES):
            code = next(c for c in _CREDENTIAL_CODES if c in text)
            what = (f"the credentials were refused or lack permission ({code}): check AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) for this endpoint")
        elif any(code in text for code in _NETWORK_CODES):
            what = "the endpoint cannot be reached: check AWS_ENDPOINT_URL and the network"
        elif "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text:
            what = f"bucket {self.bucket!r} does not exist"
        else:
            what = text[:300]
        return f"object storage {where}: {what} (while {action})"

    def check(self) -> None:
        """Fail now, in one line, when the bucket cannot be listed (before any work is done)."""
        fs = self.filesystem
        with self.errors("checking access"):
            if fs.get_file_info(self.bucket).type == pafs.FileType.NotFound:
                raise ObjectStoreError(f"object storage {self.uri} (endpoint {self.endpoint or 'AWS default'}): "
                                       f"bucket {self.bucket!r} does not exist (while checking access)")
            fs.get_file_info(pafs.FileSelector(self.key(), allow_not_found=True))
