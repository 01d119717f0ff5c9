"""Collects leave-one-source-out summaries into ``models/report/loso.json`` for the card.

python -m training.loso_report runs/loso_ft/summary.json runs/loso_probe/summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str], out: Path = Path("models/report/loso.json")) -> Path:
    rows = []
    for path in paths:
        for row in json.loads(Path(path).read_text()).values():
            row = dict(row)
            row.setdefault("mode", "fine-tune")
            if row["mode"].startswith("probe"):
                row["epochs"] = None  # nothing was fine-tuned
            row.pop("val_certificate", None)
            rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    return out


if __name__ == "__main__":
    print(main(sys.argv[1:]))
