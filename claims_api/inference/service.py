"""Holds the model the service scores with; loading failures leave the service up (claims
then go to people) and are reported by ``/readyz``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from claims_api.inference.model import Classifier, ModelLoadError

log = logging.getLogger(__name__)


class ModelHolder:
    def __init__(self, path: Path | None, *, threads: int = 1) -> None:
        self._lock = threading.Lock()
        self._threads = threads
        self.classifier: Classifier | None = None
        self.error: str | None = None
        if path is None:
            self.error = "no model configured and none bundled in models/"
        else:
            self.load(path)

    def load(self, path: Path) -> None:
        try:
            classifier = Classifier(path, intra_op_threads=self._threads)
        except (ModelLoadError, OSError) as exc:
            log.error("model not loaded: %s", exc)
            with self._lock:
                self.error = str(exc)
            return
        with self._lock:
            self.classifier, self.error = classifier, None
        log.info("model %s loaded from %s", classifier.version, path)

    @property
    def ready(self) -> bool:
        return self.classifier is not None
