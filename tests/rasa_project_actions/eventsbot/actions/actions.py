"""Actions that return each kind of rasa_sdk event, for the custom action event tests."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import AllSlotsReset, ConversationPaused, FollowupAction, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher


class Remember(Action):
    def name(self) -> str:
        return "action_remember"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        return [SlotSet("color", "blue")]


class Reset(Action):
    def name(self) -> str:
        return "action_reset"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        return [AllSlotsReset()]


class Followup(Action):
    def name(self) -> str:
        return "action_followup"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="One moment.")
        return [FollowupAction("utter_followed")]


class Pause(Action):
    def name(self) -> str:
        return "action_pause"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        return [ConversationPaused()]


class Revert(Action):
    def name(self) -> str:
        return "action_revert"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Let's forget that.")
        return [UserUtteranceReverted()]
