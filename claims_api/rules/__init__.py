"""The claim rules, in one place.

* :mod:`~claims_api.rules.policy`: the versioned thresholds (``Policy``; a JSON file can
  replace the defaults).
* :mod:`~claims_api.rules.gate`: ``photo_gate`` — what one photo says on its own; the upload
  check, the claim decision and ``freshclaim predict`` all call it.
* :mod:`~claims_api.rules.signals`: one declarative entry per reason code (its check, the
  policy fields it reads, its reviewer- and customer-facing text in en/zh).
* :mod:`~claims_api.rules.decision`: ``decide`` — signals + scores + policy → route + reasons.

To add a signal: write its check and ``@rule(...)`` entry in ``signals.py`` (texts included),
gather any new fact it needs in ``claims_api.verification`` (lookups that read the database
stay there), and add a test. Everything else — the decision, the reason-code enum, the
review queue's filter, the workbench and the generated docs — reads :data:`RULES`.
"""

from claims_api.rules.decision import Decision, decide
from claims_api.rules.gate import PhotoGate, photo_gate
from claims_api.rules.policy import Policy, load_policy
from claims_api.rules.signals import (
    REASON_CODES,
    RULES,
    ClaimContext,
    Rule,
    Signal,
    Trust,
    customer_text,
    evaluate,
    reviewer_text,
    trust_of,
)

__all__ = [
    "REASON_CODES",
    "RULES",
    "ClaimContext",
    "Decision",
    "PhotoGate",
    "Policy",
    "Rule",
    "Signal",
    "Trust",
    "customer_text",
    "decide",
    "evaluate",
    "load_policy",
    "photo_gate",
    "reviewer_text",
    "trust_of",
]
