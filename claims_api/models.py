"""Imports every domain's tables so ``Base.metadata`` (Alembic, tests) sees them all."""

from claims_api.audit.models import AuditEntry
from claims_api.auth.models import ApiKey, Reviewer
from claims_api.claims.models import Claim, ClaimPhoto, IdempotencyRecord
from claims_api.compensation.models import LedgerEntry, LedgerPosting
from claims_api.db import Base
from claims_api.events.models import ConsumedEvent, EventSequence, OutboxEvent
from claims_api.limits.models import RateBucket
from claims_api.orders.models import Customer, Order, OrderLine
from claims_api.photos.models import Photo, PhotoHash, PhotoView
from claims_api.profiles.models import CustomerProfile, SkuQualityAlert
from claims_api.quality.models import QualityIncident
from claims_api.review.models import PhotoLabel, ReviewDecision
from claims_api.web.models import WebSession
from claims_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Claim",
    "ClaimPhoto",
    "ConsumedEvent",
    "Customer",
    "CustomerProfile",
    "EventSequence",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerPosting",
    "Order",
    "OrderLine",
    "OutboxEvent",
    "Photo",
    "PhotoHash",
    "PhotoLabel",
    "PhotoView",
    "QualityIncident",
    "RateBucket",
    "ReviewDecision",
    "Reviewer",
    "SkuQualityAlert",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
