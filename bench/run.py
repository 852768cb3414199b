"""`make bench`: every benchmark in one run, a table of ratios, results kept as JSON.

Each bench module exposes `run() -> list[dict]`; a module whose part is missing is skipped.
`python bench/run.py throughput` runs issue 17's benches alone (gateway, overload, aggregator,
end to end); any other arguments name modules.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = [
    "contract_bench", "sdk_bench", "gateway_bench", "aggregator_bench", "e2e_bench",
    "retention_bench", "overload_bench", "gateway_cpu",
]  # fmt: skip
GROUPS = {
    "throughput": [
        "gateway_bench", "overload_bench", "gateway_cpu", "aggregator_bench", "e2e_bench",
    ],
}  # fmt: skip


def main(names: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    rows: list[dict[str, object]] = []
    for name in [m for n in names for m in GROUPS.get(n, [n])] or MODULES:
        if not (HERE / f"{name}.py").exists():
            continue
        print(f"… {name}", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(f"bench.{name}").run())
        except Exception:
            traceback.print_exc()
            rows.append({"component": name, "metric": "FAILED", "value": None})
    print(f"{'component':<11} {'metric':<58} {'value':>12} {'raw':>12} {'ratio':>7} {'target':>7}")
    for row in rows:
        print(
            f"{row.get('component', ''):<11} {str(row.get('metric', ''))[:58]:<58} "
            f"{row.get('value', '')!s:>12} {row.get('raw', '')!s:>12} "
            f"{row.get('ratio', '')!s:>7} {row.get('target', '')!s:>7}"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results" / f"{stamp}.json"
    out.write_text(
        json.dumps(
            {"at": stamp, "machine": platform.platform(), "python": platform.python_version(),
             "rows": rows},
            indent=2,
        )
    )  # fmt: skip
    print(f"results: {out.relative_to(HERE.parent)}")
    return 1 if any(row.get("metric") == "FAILED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
