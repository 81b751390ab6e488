"""Loaders for the public intent datasets the accuracy benchmarks read (never copied into the repo).

BANKING77 (Casanueva et al. 2020, CC BY 4.0) and CLINC150 (Larson et al. 2019, CC BY 3.0) live
outside the repository; each benchmark takes their folder with `--data`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_OF_SCOPE = "oos"


def default_data_dir(name: str) -> Path:
    """`../shared/datasets/<name>` next to the repository, where the project keeps them."""
    return REPO_ROOT.parent / "shared" / "datasets" / name


@dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    labels: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass(frozen=True)
class Banking77:
    train: LabelledTexts
    test: LabelledTexts


@dataclass(frozen=True)
class Clinc150:
    """The "Full" setting; out-of-scope queries carry the label `oos`."""

    train: LabelledTexts  # 150 intents x 100, plus 100 oos (the "oos-train" setup)
    val: LabelledTexts  # 150 x 20 in scope + 100 oos
    test: LabelledTexts  # 150 x 30 in scope + 1,000 oos


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass the dataset folder with --data (see benchmarks/README.md)")
    return path


def _read_banking_csv(path: Path) -> LabelledTexts:
    # Some texts hold newlines inside quoted fields: a real CSV parser is required.
    with _require_file(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"text", "category"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return LabelledTexts([r["text"] for r in rows], [r["category"] for r in rows])


def load_banking77(directory: Path) -> Banking77:
    return Banking77(
        train=_read_banking_csv(directory / "train.csv"),
        test=_read_banking_csv(directory / "test.csv"),
    )


def load_clinc150(directory: Path) -> Clinc150:
    path = _require_file(directory / "data_full.json")
    splits = json.loads(path.read_text(encoding="utf-8"))

    def split(*keys: str) -> LabelledTexts:
        try:
            pairs = [pair for key in keys for pair in splits[key]]
        except KeyError as err:
            raise ValueError(f"{path}: missing split {err}") from err
        return LabelledTexts([text for text, _ in pairs], [label for _, label in pairs])

    return Clinc150(
        train=split("train", "oos_train"),
        val=split("val", "oos_val"),
        test=split("test", "oos_test"),
    )


def stratified_holdout(data: LabelledTexts, fraction: float, seed: int) -> tuple[LabelledTexts, LabelledTexts]:
    """(rest, held out): `fraction` of every label held out (at least one), chosen with `seed`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    held_out = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out[members[: max(1, round(fraction * len(members)))]] = True
    return data.subset(np.flatnonzero(~held_out)), data.subset(np.flatnonzero(held_out))
