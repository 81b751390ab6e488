"""envirocar's custom actions: upstream's code is not in the corpus, so these are plausible,
deterministic stand-ins over a fixed garage of cars, saying what each step of the bot does."""

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import AllSlotsReset, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

CARS = ("VW Golf 2012", "Opel Astra 2016", "Toyota Prius 2019")
# The app reports these slots; recording starts only when none of them is False.
RECORDING_PREREQUISITES = ("location_permission", "gps", "car", "bluetooth_permission", "bluetooth", "obd_adapter")


def car_named(number: Any) -> str | None:
    """The garage's car for a 1-based number as the user says it, or None."""
    text = str(number).strip()
    return CARS[int(text) - 1] if text.isdigit() and 1 <= int(text) <= len(CARS) else None


class StartRecording(Action):
    """Starts a track, or says which prerequisite the app reported missing."""

    def name(self) -> str:
        return "action_start_recording"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        missing = [slot for slot in RECORDING_PREREQUISITES if tracker.get_slot(slot) is False]
        if missing:
            dispatcher.utter_message(text="Recording needs: " + ", ".join(missing) + ". Shall I start once it's ready?")
            return [SlotSet("recording_start_query", True)]
        dispatcher.utter_message(text="Recording started.")
        return [SlotSet("recording_mode", "recording"), SlotSet("recording_start_query", False)]


class StopRecording(Action):
    def name(self) -> str:
        return "action_stop_recording"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Recording stopped.")
        return [SlotSet("recording_mode", None)]


class Followup(Action):
    """An affirm outside a form answers the bot's last question: only "start recording?" is asked."""

    def name(self) -> str:
        return "action_followup"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        if tracker.get_slot("recording_start_query"):
            return StartRecording().run(dispatcher, tracker, domain)
        dispatcher.utter_message(text="Okay.")
        return []


class CancelCommands(Action):
    def name(self) -> str:
        return "action_cancel_commands"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Cancelled.")
        return [AllSlotsReset()]


class AskCarNumber(Action):
    def name(self) -> str:
        return "action_ask_car_number"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        listed = "; ".join(f"{number}. {car}" for number, car in enumerate(CARS, start=1))
        dispatcher.utter_message(text=f"Which car? {listed}")
        return []


class AskCarVerification(Action):
    def name(self) -> str:
        return "action_ask_car_verification"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=f"Shall I select the {tracker.get_slot('car_name')}?")
        return []


class ValidateCarSelectionForm(FormValidationAction):
    """A valid number names the car and settles the browsing slots, so the form asks only for
    the number and the confirmation; a "no" asks for the number again."""

    def name(self) -> str:
        return "validate_car_selection_form"

    def validate_car_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        car = car_named(value)
        if car is None:
            dispatcher.utter_message(text=f"There is no car number {value}.")
            return {"car_number": None}
        return {
            "car_number": str(value),
            "car_name": car,
            "select_car_iteration": 0.0,
            "next_car": False,
            "previous_car": False,
        }

    def validate_car_verification(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == "yes":
            return {"car_verification": "yes"}
        return {"car_verification": None, "car_number": None, "car_name": None}


class CarSelection(Action):
    def name(self) -> str:
        return "action_car_selection"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=f"Selected the {tracker.get_slot('car_name')}.")
        return [SlotSet("car", True)]


class DetailedCarSelection(Action):
    """A car number said outside the form selects that car at once."""

    def name(self) -> str:
        return "action_detailed_car_selection"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        number = next(tracker.get_latest_entity_values("car_selection_number"), None)
        car = car_named(number)
        if car is None:
            dispatcher.utter_message(text="Which car number do you mean?")
            return []
        dispatcher.utter_message(text=f"Selected the {car}.")
        return [SlotSet("car_number", str(number)), SlotSet("car_name", car), SlotSet("car", True)]
