"""Custom actions for this assistant, served by the rasa_sdk action server (`crowddesk run actions`)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionHelloWorld(Action):
    """A starting point for your own actions: declare the name under `actions:` in domain.yml
    and use it as a step in data/rules.yml."""

    def name(self) -> str:
        return "action_hello_world"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Hello World!")
        return []
