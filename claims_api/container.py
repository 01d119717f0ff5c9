"""Everything a request needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from claims_api.config import Settings
from claims_api.db import Database
from claims_api.inference.service import ModelHolder
from claims_api.photos.storage import LocalPhotoStorage, PhotoStorage
from claims_api.rules.policy import Policy, load_policy


@dataclass
class Container:
    settings: Settings
    db: Database
    models: ModelHolder
    storage: PhotoStorage
    policy: Policy
    secret: str


def build_storage(settings: Settings) -> PhotoStorage:
    if settings.photo_storage == "s3":
        from claims_api.photos.storage import S3PhotoStorage

        if not settings.s3_bucket:
            raise ValueError("FRESHCLAIM_S3_BUCKET is required with FRESHCLAIM_PHOTO_STORAGE=s3")
        return S3PhotoStorage.from_settings(settings)
    return LocalPhotoStorage(settings.photo_dir)


def build_container(settings: Settings, *, models: ModelHolder | None = None) -> Container:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Container(
        settings=settings,
        db=Database(settings.resolved_database_url),
        models=models
        or ModelHolder(settings.resolved_model_path(), threads=settings.model_threads),
        storage=build_storage(settings),
        policy=load_policy(settings.policy_file),
        secret=settings.resolved_secret_key(),
    )
