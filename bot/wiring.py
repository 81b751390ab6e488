"""Translations from a loaded project to what the components need."""

from __future__ import annotations

from crowddesk.bot.project import Project
from crowddesk.knowledge_base.importers import RasaRetrievalImporter
from crowddesk.knowledge_base.types import KBEntry


def faq_entries(project: Project) -> list[KBEntry]:
    """The project's retrieval intents (`faq/<key>` + `utter_faq/<key>`) as KB entries."""
    return RasaRetrievalImporter().load(project.root)


def rules_by_intent(project: Project) -> dict[str, list[str]]:
    """Single-turn rules: the intent that opens a rule and the actions that follow it."""
    rules: dict[str, list[str]] = {}
    for rule in project.data.rules:
        intents = [step.name for step in rule.steps if step.kind == "intent"]
        actions = [step.name for step in rule.steps if step.kind == "action"]
        if len(intents) == 1 and actions:
            rules[intents[0]] = actions
    return rules
