"""Writes the generated parts of the documentation from the code they describe.

A generated block in a Markdown file lies between two marker lines::

    <!-- generated:NAME:start -->
    ...
    <!-- generated:NAME:end -->

and everything between them is rewritten from :data:`GENERATORS` (the text around the markers is
hand-written and left alone). ``freshclaim docs`` (or ``python -m claims_api.docgen``) rewrites
the blocks; ``--check`` only reports the files whose blocks differ, which is what
``tests/ops/test_docs_generated.py`` asserts. Hand-written rather than a documentation generator
(mkdocs, Sphinx): the docs are plain Markdown read on GitHub, and all that needs generating is
a few tables.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from claims_api.config import PACKAGE_ROOT, Settings

REPOSITORY_ROOT = PACKAGE_ROOT.parent
DOCS_DIR = REPOSITORY_ROOT / "docs"

MARKER = re.compile(
    r"(?P<start><!-- generated:(?P<name>[a-z0-9-]+):start -->\n)"
    r"(?P<body>.*?)"
    r"(?P<end><!-- generated:(?P=name):end -->)",
    re.DOTALL,
)


class DocsError(Exception):
    """A generated block that cannot be written (unknown name, unclosed marker)."""


def _type_name(annotation: Any) -> str:
    """``int``, ``Path``, ``list[str]``; ``X | None`` shows as ``X`` (unset is the default)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(_type_name(arg) for arg in present)
    if origin is not None:
        arguments = ", ".join(_type_name(arg) for arg in get_args(annotation))
        return f"{origin.__name__}[{arguments}]"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def _bounds(field: FieldInfo) -> str:
    parts = []
    for constraint in field.metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(constraint, kind):
                parts.append(f"{sign} {getattr(constraint, attribute)}")
    return ", ".join(parts)


MIB = 1024 * 1024


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        # a path inside the repository is shown relative to it, not as this machine's path
        if value.is_absolute() and value.is_relative_to(REPOSITORY_ROOT):
            value = value.relative_to(REPOSITORY_ROOT)
        return f"`{value.as_posix()}/`" if not value.suffix else f"`{value.as_posix()}`"
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        return f"`{value}` ({value // MIB} MiB)"
    if isinstance(value, list | tuple):
        return f"`{list(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _with_variables(text: str, names: list[str], env_prefix: str) -> str:
    """A description names other settings by field name (``max_upload_bytes``); the table
    shows them as the variables an operator sets. Only names with an underscore are taken,
    and none inside a code span, so plain words and paths stay as written."""
    if not env_prefix:
        return text
    pattern = re.compile(r"(?<![`/\w])(" + "|".join(n for n in names if "_" in n) + r")(?![`\w])")
    return pattern.sub(lambda m: f"`{env_prefix}{m[1].upper()}`", text)


def settings_table(model: type[BaseModel] = Settings, env_prefix: str = "FRESHCLAIM_") -> str:
    """One row per field of a settings model: variable, type (with bounds), default, meaning.
    A field without a description is an error, so an undocumented setting cannot ship."""
    missing = [name for name, field in model.model_fields.items() if not field.description]
    if missing:
        raise DocsError(f"{model.__name__} fields without a description: {', '.join(missing)}")
    rows = [
        f"| {'variable' if env_prefix else 'field'} | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    names = list(model.model_fields)
    for name, field in model.model_fields.items():
        meaning = _with_variables(field.description or "", names, env_prefix)
        kind = _type_name(field.annotation)
        bounds = _bounds(field)
        if bounds:
            kind = f"{kind}, {bounds}"
        variable = f"`{env_prefix}{name.upper()}`" if env_prefix else f"`{name}`"
        rows.append(f"| {variable} | {_cell(kind)} | {_cell(_default(field))} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def reason_codes_table() -> str:
    """One row per rule of ``claims_api.rules.signals``: the code, when it fires, the policy
    fields it reads and what the customer is told (nothing, for the checks kept to staff)."""
    from claims_api.rules import RULES

    rows = [
        "| code | fires when | policy fields | the customer is told |",
        "| --- | --- | --- | --- |",
    ]
    for code, rule in RULES.items():
        reads = ", ".join(f"`{name}`" for name in rule.reads) or "—"
        told = rule.customer["en"] if rule.customer else "only that a person checks the claim"
        rows.append(f"| `{code}` | {_cell(rule.when)} | {reads} | {_cell(told)} |")
    return "\n".join(rows) + "\n"


def review_reasons_table() -> str:
    """The reason codes a reviewer may give per outcome, with the default customer sentence."""
    from claims_api.rules.review_reasons import REVIEW_REASONS, default_customer_sentence

    rows = ["| outcome | reason code | default sentence to the customer |", "| --- | --- | --- |"]
    for outcome, codes in REVIEW_REASONS.items():
        for code in codes:
            sentence = default_customer_sentence(code, "en") or "—"
            rows.append(f"| `{outcome}` | `{code}` | {_cell(sentence)} |")
    return "\n".join(rows) + "\n"


def outcome_table() -> str:
    """The customer outcomes (``outcome.code``) with their sentences in both languages."""
    from claims_api.rules.outcome import SENTENCES

    rows = ["| `outcome.code` | English | 中文 |", "| --- | --- | --- |"]
    for code, texts in SENTENCES.items():
        rows.append(f"| `{code}` | {_cell(texts['en'])} | {_cell(texts['zh'])} |")
    return "\n".join(rows) + "\n"


def event_catalogue() -> str:
    """docs/events.md: every event type, its JSON schema and an example
    (``claims_api.events.catalogue``)."""
    from claims_api.events.catalogue import render_markdown

    return render_markdown()


def policy_table() -> str:
    from claims_api.rules.policy import Policy

    return settings_table(Policy, env_prefix="")


GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "reason-codes": reason_codes_table,
    "review-reasons": review_reasons_table,
    "customer-outcomes": outcome_table,
    "policy": policy_table,
    "events": event_catalogue,
}


def rewrite(text: str, generators: dict[str, Callable[[], str]] = GENERATORS) -> str:
    """``text`` with every generated block it holds written afresh."""
    if text.count(":start -->") != text.count(":end -->"):
        raise DocsError("a generated block's start marker has no matching end marker")

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name in generators:
            return match["start"] + generators[name]() + match["end"]
        raise DocsError(f"no generator for the block {name!r}")

    return MARKER.sub(block, text)


@dataclass(frozen=True)
class Outcome:
    path: Path
    changed: bool


def generated_files(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """The Markdown files under ``docs_dir`` (and the README) that hold a generated block."""
    candidates = [*sorted(docs_dir.glob("*.md")), docs_dir.parent / "README.md"]
    return [p for p in candidates if p.exists() and "<!-- generated:" in p.read_text("utf-8")]


def run(*, check: bool, docs_dir: Path = DOCS_DIR) -> list[Outcome]:
    """Rewrites (or, with ``check``, only compares) every file with generated blocks."""
    if not docs_dir.is_dir():
        raise DocsError(f"no docs folder at {docs_dir} (run from a checkout of the repository)")
    outcomes = []
    for path in generated_files(docs_dir):
        current = path.read_text("utf-8")
        fresh = rewrite(current)
        changed = fresh != current
        if changed and not check:
            path.write_text(fresh, "utf-8")
        outcomes.append(Outcome(path, changed))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims_api.docgen", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="Only report files whose generated blocks differ."
    )
    args = parser.parse_args(argv)
    try:
        outcomes = run(check=args.check)
    except DocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [o.path for o in outcomes if o.changed]
    for path in stale:
        verb = "out of date" if args.check else "rewrote"
        print(f"{verb}: {path.relative_to(REPOSITORY_ROOT)}")
    if args.check and stale:
        print("run `freshclaim docs` and commit the result", file=sys.stderr)
        return 1
    if not stale:
        print(f"{len(outcomes)} generated file(s) up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
