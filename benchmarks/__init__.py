"""Accuracy and speed benchmarks (run by hand, never in CI); see benchmarks/README.md.

Shared here: what the accuracy benchmarks record about the machine, how they print tables and
where they write results.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_VERSIONED_PACKAGES = ("crowddesk", "sentence-transformers", "transformers", "scikit-learn")


def accuracy_machine_info() -> dict[str, Any]:
    """The latency benchmark's machine facts, plus the packages and load that move accuracy
    and training-time numbers."""
    from benchmarks.latency import machine_info

    return {
        **machine_info(),
        **{package: metadata.version(package) for package in _VERSIONED_PACKAGES},
        # Other processes share the machine; a high load average means slower, noisier timings.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def write_results(name: str, payload: dict[str, Any], path: Path | None = None) -> Path:
    target = path or RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
