"""Translations from a loaded project to what the components need."""

from __future__ import annotations

from collections.abc import Sequence

from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.story_steps import OrStep, UserStep
from crowddesk.bot.project.training_data import Rule, Story
from crowddesk.knowledge_base.sources.importers import RasaRetrievalImporter
from crowddesk.knowledge_base.types import KBEntry


def faq_entries(project: Project) -> list[KBEntry]:
    """The project's retrieval intents (`faq/<key>` + `utter_faq/<key>`) as KB entries."""
    return RasaRetrievalImporter().load(project.root)


def intent_titles(project: Project) -> dict[str, str]:
    """What a clarifying button offering each intent says (`metadata.title` in the domain)."""
    domain = project.domain
    return {intent: title for intent in domain.intents if (title := domain.intent_title(intent)) is not None}


def dialogue_intents(project: Project) -> list[str]:
    """Intents some rule or story of the project responds to, in first-seen order."""
    return handled_intents([*project.data.rules, *project.data.stories])


def handled_intents(dialogues: Sequence[Rule | Story]) -> list[str]:
    """Intents of the user steps (`or:` alternatives included) of rules and stories."""
    intents: dict[str, None] = {}
    for dialogue in dialogues:
        for step in dialogue.steps:
            options = step.alternatives if isinstance(step, OrStep) else (step,)
            intents.update(
                (option.intent, None) for option in options if isinstance(option, UserStep) and option.intent
            )
    return list(intents)
