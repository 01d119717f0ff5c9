"""The list of in-process consumers the relay feeds. To add one: declare a
``CONSUMER = Consumer(name, handler, event_types)`` in your domain's service and name its module
here. Listed, not registered on import, so that which consumers run never depends on what
happened to be imported first."""

from __future__ import annotations

from importlib import import_module

from claims_api.events.consumers import Consumer

CONSUMER_MODULES = ("claims_api.profiles.service", "claims_api.quality.service")


def registered_consumers() -> list[Consumer]:
    return [import_module(module).CONSUMER for module in CONSUMER_MODULES]
