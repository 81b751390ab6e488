"""Entities learned from annotated examples: a linear-chain CRF over word features, as Rasa's
CRFEntityExtractor, so unseen values in seen contexts are found ("transfer 20 dollars to Maria")."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pycrfsuite

from crowddesk.nlu.entities import blank_pipeline
from crowddesk.nlu.types import Entity, TrainingExample

OUTSIDE = "O"
# A tag's label is the entity with its role and group, so the CRF learns them as one: "city",
# "city#from", "city##pair", "city#from#pair".
_SEPARATOR = "#"
# Rasa's CRFEntityExtractor defaults. L-BFGS has no random start, so training is deterministic.
TRAINING_PARAMS = {"c1": 0.1, "c2": 0.1, "max_iterations": 50, "feature.possible_transitions": True}


class CRFEntityExtractor:
    """Tags tokens with BILOU tags (Begin, Inside, Last, Unit, Outside). Values are the tagged
    text as written: synonyms are applied by whoever combines extractors."""

    name = "CRFEntityExtractor"

    def __init__(self, language: str, model: bytes) -> None:
        self.language = language
        self.model = model  # CRFsuite's own model format, not a pickle
        self._nlp = blank_pipeline(language)
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open_inmemory(model)
        self._tagging = threading.Lock()  # a CRFsuite tagger is not safe to share between threads

    @classmethod
    def train(cls, examples: Sequence[TrainingExample], language: str) -> CRFEntityExtractor | None:
        """None when no example has an annotated entity: there is nothing to learn. Otherwise every
        example trains it, as in Rasa: those without entities teach where there are none."""
        if not any(example.entities for example in examples):
            return None
        nlp = blank_pipeline(language)
        trainer = pycrfsuite.Trainer(verbose=False)
        trainer.set_params(TRAINING_PARAMS)
        for example in examples:
            tokens = _tokens(nlp, example.text)
            trainer.append(_features(tokens), _tags(example, tokens))
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "entities.crfsuite"
            trainer.train(str(path))
            return cls(language, path.read_bytes())

    def extract(self, text: str) -> list[Entity]:
        tokens = _tokens(self._nlp, text)
        if not tokens:
            return []
        with self._tagging:
            tags = self._tagger.tag(_features(tokens))
        entities = []
        for label, first, last in _spans(tags):
            entity, role, group = _split_label(label)
            start, end = tokens[first].idx, tokens[last].idx + len(tokens[last])
            surface = text[start:end]
            entities.append(Entity(entity, surface, start, end, self.name, surface, role, group))
        return entities


def _tokens(nlp: Any, text: str) -> list[Any]:
    return [token for token in nlp.tokenizer(text) if not token.is_space]


def _features(tokens: Sequence[Any]) -> list[dict[str, Any]]:
    """Rasa's CRF features: the word's spelling around it, its shape and affixes itself."""
    rows = []
    for index, token in enumerate(tokens):
        word = token.text
        row: dict[str, Any] = {
            "bias": 1.0,
            "low": word.lower(),
            "shape": token.shape_,
            "prefix2": word[:2],
            "prefix5": word[:5],
            "suffix2": word[-2:],
            "suffix3": word[-3:],
            "suffix5": word[-5:],
            "upper": word.isupper(),
            "title": word.istitle(),
            "digit": word.isdigit(),
        }
        for offset in (-2, -1, 1, 2):
            position = index + offset
            if not 0 <= position < len(tokens):
                row[f"{offset}:edge"] = True
                continue
            other = tokens[position].text
            row[f"{offset}:low"] = other.lower()
            if abs(offset) == 1:
                row[f"{offset}:title"] = other.istitle()
                row[f"{offset}:upper"] = other.isupper()
        rows.append(row)
    return rows


def _tags(example: TrainingExample, tokens: Sequence[Any]) -> list[str]:
    """BILOU tags; a token only partly inside an annotation stays outside."""
    tags = [OUTSIDE] * len(tokens)
    for span in example.entities:
        label = _label(span.entity, span.role, span.group, example)
        inside = [i for i, token in enumerate(tokens) if span.start <= token.idx and token.idx + len(token) <= span.end]
        if len(inside) == 1:
            tags[inside[0]] = f"U-{label}"
        elif inside:
            tags[inside[0]] = f"B-{label}"
            tags[inside[-1]] = f"L-{label}"
            for i in inside[1:-1]:
                tags[i] = f"I-{label}"
    return tags


def _label(entity: str, role: str | None, group: str | None, example: TrainingExample) -> str:
    parts = [entity, role or "", group or ""]
    if any(_SEPARATOR in part for part in parts):
        where = example.source or repr(example.text)
        raise ValueError(f"{where}: entity, role and group names cannot contain {_SEPARATOR!r}: {parts}")
    return _SEPARATOR.join(parts).rstrip(_SEPARATOR)


def _split_label(label: str) -> tuple[str, str | None, str | None]:
    entity, role, group = [*label.split(_SEPARATOR), "", ""][:3]
    return entity, role or None, group or None


def _spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(label, first token, last token) per entity; a B or I without its L ends where the label
    changes, as the CRF may tag an unseen sequence imperfectly."""
    spans: list[tuple[str, int, int]] = []
    open_label: str | None = None
    for index, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        continues = open_label == label and prefix in ("I", "L")
        if continues:
            spans[-1] = (label, spans[-1][1], index)
        elif prefix != OUTSIDE:
            spans.append((label, index, index))
        open_label = label if prefix in ("B", "I") else None
    return spans
