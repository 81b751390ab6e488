"""The form tests' validation action: a rasa_sdk FormValidationAction, as projects write them."""

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

KNOWN_ACCOUNTS = {"savings", "checking"}


class ValidateVerifyForm(FormValidationAction):
    def name(self) -> str:
        return "validate_verify_form"

    def validate_account(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if str(value).lower() in KNOWN_ACCOUNTS:
            return {"account": str(value).lower()}
        dispatcher.utter_message(text=f"I can't find an account called {value}.")
        return {"account": None}
