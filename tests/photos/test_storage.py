"""Photo storage: content-addressed, atomic, idempotent, and no key can leave the root."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest

from claims_api.photos.storage import (
    InvalidKey,
    LocalPhotoStorage,
    PhotoNotFound,
    PhotoStorage,
    S3PhotoStorage,
    content_key,
)

SHA = "ab" + "cd" + "0" * 60


def test_local_round_trip_and_layout(tmp_path: Path) -> None:
    storage = LocalPhotoStorage(tmp_path)
    key = content_key(SHA)
    assert not storage.exists(key)
    storage.put(key, b"jpeg bytes", "image/jpeg")
    assert storage.exists(key)
    assert storage.get(key) == b"jpeg bytes"
    assert (tmp_path / "ab" / "cd" / f"{SHA}.jpg").read_bytes() == b"jpeg bytes"
    storage.delete(key)
    storage.delete(key)  # deleting twice is fine
    assert not storage.exists(key)
    with pytest.raises(PhotoNotFound):
        storage.get(key)
    assert isinstance(storage, PhotoStorage)


def test_put_is_idempotent_and_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = LocalPhotoStorage(tmp_path)
    key = content_key(SHA)
    threads = [threading.Thread(target=storage.put, args=(key, b"x" * 10_000)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    storage.put(key, b"x" * 10_000)
    assert storage.get(key) == b"x" * 10_000
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != f"{SHA}.jpg"]
    assert leftovers == []


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path, monkeypatch) -> None:
    storage = LocalPhotoStorage(tmp_path)
    key = content_key(SHA)
    storage.put(key, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        storage.put(key, b"new and longer")
    monkeypatch.undo()
    assert storage.get(key) == b"old"
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "ab/../../x.jpg", "/abs.jpg", "a", "", "sp ace.jpg", "x" * 300]
)
def test_hostile_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalPhotoStorage(tmp_path)
    with pytest.raises(InvalidKey):
        storage.put(key, b"data")
    with pytest.raises(InvalidKey):
        storage.exists(key)


@pytest.mark.skipif(importlib.util.find_spec("moto") is None, reason="moto is not installed")
def test_s3_storage_with_moto(monkeypatch) -> None:
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="photos")
        storage = S3PhotoStorage("photos", "freshclaim/", client)
        key = content_key(SHA)
        assert not storage.exists(key)
        storage.put(key, b"jpeg bytes", "image/jpeg")
        assert storage.exists(key)
        assert storage.get(key) == b"jpeg bytes"
        head = client.head_object(Bucket="photos", Key=f"freshclaim/{SHA}.jpg")
        assert head["ContentType"] == "image/jpeg"
        storage.delete(key)
        assert not storage.exists(key)
        with pytest.raises(PhotoNotFound):
            storage.get(key)
        with pytest.raises(InvalidKey):
            storage.put("../escape", b"x")
