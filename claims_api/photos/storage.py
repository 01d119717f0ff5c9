"""Where stored photo copies live: a local folder (embedded default) or an S3-compatible bucket.

Keys are content addresses chosen by the service (``"<sha256>.jpg"``), so a ``put`` of the same
key is idempotent: the bytes are the same by construction. Keys are validated strictly — they
never come from a client, but a path built from a key must not be able to leave the root.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{3,127}(\.[A-Za-z0-9]{1,8})?$")


class PhotoNotFound(KeyError):
    """No object under this key."""


class InvalidKey(ValueError):
    """The key has characters a content address never has."""


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
        raise InvalidKey(f"invalid photo key {key!r}")
    return key


def content_key(sha256_hex: str, extension: str = "jpg") -> str:
    """The storage key of a content-addressed photo."""
    return validate_key(f"{sha256_hex}.{extension}")


@runtime_checkable
class PhotoStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class LocalPhotoStorage:
    """Files under ``root`` at ``ab/cd/<key>`` (two fan-out levels from the key's first four
    characters). Writes go to a temporary file in the same folder, are fsynced and moved into
    place with ``os.replace``: a reader never sees half a photo, and a crash leaves at most a
    stray ``.tmp`` file."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        validate_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        path = self.path_for(key)
        if path.exists() and path.stat().st_size == len(data):
            return  # content-addressed: same key, same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as temp:
                temp.write(data)
                if self.fsync:
                    temp.flush()
                    os.fsync(temp.fileno())
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError as exc:
            raise PhotoNotFound(key) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(key).unlink()

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()


class S3PhotoStorage:
    """Objects ``<prefix><key>`` in an S3-compatible bucket. ``client`` is a boto3 S3 client
    (boto3 is the optional ``s3`` extra and is imported only when no client is given)."""

    def __init__(self, bucket: str, prefix: str = "photos/", client: Any = None) -> None:
        if client is None:
            client = _boto3_client()
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    @classmethod
    def from_settings(cls, settings: Any) -> S3PhotoStorage:
        client = _boto3_client(endpoint_url=getattr(settings, "s3_endpoint_url", None))
        return cls(settings.s3_bucket, getattr(settings, "s3_prefix", "photos/"), client)

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{validate_key(key)}"

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            ContentType=content_type,
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                raise PhotoNotFound(key) from exc
            raise
        return response["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                return False
            raise
        return True


def _boto3_client(endpoint_url: str | None = None) -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("S3 photo storage needs boto3: pip install 'freshclaim[s3]'") from exc
    return boto3.client("s3", endpoint_url=endpoint_url)


def _is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}
