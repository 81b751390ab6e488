"""The named states are the strings already stored in the database and shown in the APIs and the
CLI: renaming a value would strand the rows written before, so the values are pinned here."""

from __future__ import annotations

import json

from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES, ConversationOwner, OutboxState, TicketStatus
from crowddesk.knowledge_base.suggestions import SuggestionStatus
from crowddesk.knowledge_base.types import EntryStatus


def test_each_state_is_its_stored_string() -> None:
    assert list(TicketStatus) == ["queued", "assigned", "resolved"]
    assert OPEN_TICKET_STATUSES == ("queued", "assigned")
    assert list(ConversationOwner) == ["bot", "queued", "assigned"]
    assert list(OutboxState) == ["pending", "delivered", "failed"]
    assert list(SuggestionStatus) == ["pending", "approved", "rejected"]
    assert list(EntryStatus) == ["draft", "published", "retired"]


def test_a_state_prints_and_serialises_as_its_plain_string() -> None:
    for state in (
        TicketStatus.ASSIGNED,
        ConversationOwner.BOT,
        OutboxState.DELIVERED,
        SuggestionStatus.REJECTED,
        EntryStatus.DRAFT,
    ):
        assert (str(state), f"{state}", f"{state:10}") == (state.value, state.value, f"{state.value:10}")
        assert json.dumps({state: state}) == json.dumps({state.value: state.value})
    assert " or ".join(OPEN_TICKET_STATUSES) == "queued or assigned"
