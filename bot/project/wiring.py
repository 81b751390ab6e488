"""Translations from a loaded project to what the components need."""

from __future__ import annotations

from collections.abc import Sequence

from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.story_steps import ActionStep, UserStep
from crowddesk.bot.project.training_data import Rule
from crowddesk.knowledge_base.sources.importers import RasaRetrievalImporter
from crowddesk.knowledge_base.types import KBEntry


def faq_entries(project: Project) -> list[KBEntry]:
    """The project's retrieval intents (`faq/<key>` + `utter_faq/<key>`) as KB entries."""
    return RasaRetrievalImporter().load(project.root)


def intent_titles(project: Project) -> dict[str, str]:
    """What a clarifying button offering each intent says (`metadata.title` in the domain)."""
    domain = project.domain
    return {intent: title for intent in domain.intents if (title := domain.intent_title(intent)) is not None}


def rules_by_intent(project: Project) -> dict[str, list[str]]:
    """Single-turn rules: the intent that opens a rule and the actions that follow it."""
    return single_turn_rules(project.data.rules)


def single_turn_rules(rule_list: Sequence[Rule]) -> dict[str, list[str]]:
    """The intent that opens each single-turn rule and the actions that follow it."""
    rules: dict[str, list[str]] = {}
    for rule in rule_list:
        users = [step for step in rule.steps if isinstance(step, UserStep)]
        actions = [step.name for step in rule.steps if isinstance(step, ActionStep)]
        if len(users) == 1 and users[0].intent is not None and actions:
            rules[users[0].intent] = actions
    return rules
