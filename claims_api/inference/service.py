"""Holds the model the service scores with; loading failures leave the service up (claims
then go to people) and are reported by ``/readyz``."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from PIL import Image

from claims_api.inference.model import Classifier, ModelLoadError, PhotoScores

log = logging.getLogger(__name__)


class ScoringUnavailable(RuntimeError):
    """No model, a failing model or a slow one: the photo is kept unscored and any claim on it
    goes to a person."""


class ModelHolder:
    def __init__(self, path: Path | None, *, threads: int = 1, max_parallel: int = 4) -> None:
        self._lock = threading.Lock()
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="scoring")
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

    def score(self, image: Image.Image, timeout: float) -> PhotoScores:
        """Score within ``timeout`` seconds or raise :class:`ScoringUnavailable`."""
        classifier = self.classifier
        if classifier is None:
            raise ScoringUnavailable(self.error or "model not loaded")
        future = self._pool.submit(classifier.score, image)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise ScoringUnavailable(f"scoring took longer than {timeout:.1f} s") from exc
        except Exception as exc:  # onnxruntime raises untyped errors
            log.exception("scoring failed")
            raise ScoringUnavailable(f"{type(exc).__name__}: {exc}") from exc
