"""Card delivery tracking for the Northwind Bank demo bot.

Run with: python -m rasa_sdk --actions actions --port 5055
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

ORDER_NUMBER_SLOT = "order_number"
ORDER_NUMBER_FORMAT = re.compile(r"CD-\d{6}", re.ASCII)

ASK_FOR_ORDER_NUMBER = (
    "Sure — what's your card order number? It looks like CD-123456 and is in your order confirmation e-mail."
)
INVALID_ORDER_NUMBER = (
    "That doesn't look like a card order number. Order numbers are CD- followed by "
    "6 digits, like CD-123456, and you'll find yours in your order confirmation e-mail."
)
UNKNOWN_ORDER_NUMBER = (
    "Sorry, we can't find a card order with the number {number}. Please check it against "
    "your order confirmation e-mail, or type 'talk to a person' and we'll look into it."
)
# Indexed by digit sum mod 3: a fictional but repeatable status for each order.
DELIVERY_STATUSES = (
    (
        "Your card order {number} is being printed. It usually leaves us within 1 working day, "
        "and you can follow it in the Northwind app under Cards."
    ),
    "Your card order {number} has been dispatched and is expected in 2 working days.",
    (
        "Your card order {number} was delivered to the address on your profile. If you can't "
        "find it, freeze the card in the Northwind app under Cards and order a replacement."
    ),
)


def delivery_status(order_number: str) -> str | None:
    """The status message for a well-formed order number, or None if no such order exists.

    The demo has no order database, so the status is derived from the digits: an order exists
    unless its digit sum is divisible by 7, and its status is the digit sum mod 3.
    """
    digit_sum = sum(int(digit) for digit in order_number[3:])
    if digit_sum % 7 == 0:
        return None
    return DELIVERY_STATUSES[digit_sum % 3].format(number=order_number)


def requested_order_number(tracker: Tracker) -> str | None:
    """The order number in the latest message, else the one remembered in the slot."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == ORDER_NUMBER_SLOT and entity.get("value"):
            return str(entity["value"])
    remembered = tracker.get_slot(ORDER_NUMBER_SLOT)
    return str(remembered) if remembered else None


class ActionCardDeliveryStatus(Action):
    """Tells the customer where their card order is.

    Without an order number it asks for one. A malformed number (not CD-######, case-insensitive)
    or one we have no order for clears the slot so the next number the customer gives is used.
    """

    def name(self) -> str:
        return "action_card_delivery_status"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[dict[str, Any]]:
        given = requested_order_number(tracker)
        if given is None:
            dispatcher.utter_message(text=ASK_FOR_ORDER_NUMBER)
            return []
        number = given.strip().upper()
        if not ORDER_NUMBER_FORMAT.fullmatch(number):
            dispatcher.utter_message(text=INVALID_ORDER_NUMBER)
            return [SlotSet(ORDER_NUMBER_SLOT, None)]
        status = delivery_status(number)
        if status is None:
            dispatcher.utter_message(text=UNKNOWN_ORDER_NUMBER.format(number=number))
            return [SlotSet(ORDER_NUMBER_SLOT, None)]
        dispatcher.utter_message(text=status)
        return [SlotSet(ORDER_NUMBER_SLOT, number)]
