"""pokedex's custom actions, as upstream writes them: rasa_sdk's knowledge-base action over the
project's `data/pokemondb.json`, and a name check against its `data/pokenames.txt`."""

import os
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.knowledge_base.actions import ActionQueryKnowledgeBase
from rasa_sdk.knowledge_base.storage import InMemoryKnowledgeBase

# The corpus holds the data files; located as tests/rasa_corpus.py locates it, since the action
# server runs in this folder's parent, not in the project.
REPOSITORY = Path(__file__).resolve().parents[4]
CORPUS = Path(os.environ.get("CROWDDESK_RASA_PROJECTS", REPOSITORY.parent / "shared" / "rasa_projects"))
DATA = CORPUS / "pokedex" / "data"


class PokemonKnowledgeBase(InMemoryKnowledgeBase):
    """The pokemon, shown by name. The action server's workers receive their actions pickled and the
    base class holds lambdas, so a copy is rebuilt from the file instead."""

    def __init__(self) -> None:
        super().__init__(str(DATA / "pokemondb.json"))
        self.set_representation_function_of_object("pokemon", lambda pokemon: pokemon["name"])

    def __reduce__(self) -> tuple[type["PokemonKnowledgeBase"], tuple[()]]:
        return (PokemonKnowledgeBase, ())


class QueryKnowledgeBase(ActionQueryKnowledgeBase):
    def __init__(self) -> None:
        super().__init__(PokemonKnowledgeBase())


class CheckExistence(Action):
    names = frozenset((DATA / "pokenames.txt").read_text(encoding="utf-8").split())

    def name(self) -> str:
        return "action_check_existence"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        mentioned = next(tracker.get_latest_entity_values("pokemon_name"), None) or tracker.get_slot("pokemon_name")
        if mentioned is None:
            dispatcher.utter_message(text="Which pokemon do you mean?")
        elif str(mentioned).lower() in self.names:
            dispatcher.utter_message(text=f"Yes, {mentioned} is a pokemon.")
        else:
            dispatcher.utter_message(text=f"I do not know {mentioned}; is it spelled correctly?")
        return []
