"""Message understanding: one encode per message, shared by the classifier and the retriever."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowddesk.nlu.classifier import CalibratedIntentClassifier
from crowddesk.nlu.encoders import Encoder
from crowddesk.nlu.entities import EntityExtractor
from crowddesk.nlu.payload import parse_payload
from crowddesk.nlu.types import Entity, IntentScore, Parse

RANKING_SIZE = 10
# The intent of a message nothing understood (Rasa's name).
NOT_UNDERSTOOD_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class Understanding:
    parse: Parse
    vector: np.ndarray | None  # None for button payloads, which skip NLU
    from_payload: bool


class NLUPipeline:
    """Encoder + calibrated intent classifier + entity extractor. Without a classifier (a project
    with no NLU data, Rasa's "core only" model) only payloads are understood; any other text
    is `nlu_fallback` at confidence 0."""

    def __init__(
        self, encoder: Encoder, classifier: CalibratedIntentClassifier | None, entities: EntityExtractor
    ) -> None:
        self.encoder = encoder
        self.classifier = classifier
        self.entities = entities

    def understand(self, text: str) -> Understanding:
        payload = parse_payload(text)
        if payload is not None:
            entities = [Entity(name, value, 0, 0, extractor="payload") for name, value in payload.entities.items()]
            intent = IntentScore(payload.intent, 1.0)
            return Understanding(Parse(text, intent, [intent], entities), None, True)
        vector = self.encoder.encode([text])
        if self.classifier is None:
            nothing = IntentScore(NOT_UNDERSTOOD_INTENT, 0.0)
            return Understanding(Parse(text, nothing, [nothing], self.entities.extract(text)), vector[0], False)
        probabilities, confidences = self.classifier.predict([text], vector)
        # Ranked by probability; the open-set confidence keeps that order within a message.
        order = np.argsort(-probabilities[0])[:RANKING_SIZE]
        ranking = [IntentScore(self.classifier.classes[i], float(confidences[0, i])) for i in order]
        parse = Parse(text, ranking[0], ranking, self.entities.extract(text))
        return Understanding(parse, vector[0], False)
