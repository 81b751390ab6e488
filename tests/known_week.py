"""A small known week of support traffic, stored as the engine, the desk and the KB feedback
store it, at moments the tests choose: the scorecard's and the dashboard's tests read its figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine

from crowddesk.bot.conversations import store as store_module
from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk import tickets as tickets_module
from crowddesk.bot.desk.agents import Agent, AgentDirectory
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.dialogue import kb_feedback as kb_feedback_module
from crowddesk.bot.dialogue.answered import first_answer
from crowddesk.bot.dialogue.kb_feedback import count_press
from crowddesk.bot.project.config import SlaSettings
from crowddesk.bot.reporting.period import Period
from crowddesk.knowledge_base import usage as usage_module
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry

SINCE = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
UNTIL = SINCE + timedelta(days=7)
WEEK = Period(SINCE, UNTIL, "rest")


class Clock:
    """The time the conversation store, the desk and the KB feedback stamp their rows with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = SINCE
        clock = self

        class SetDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return clock.now if tz is None else clock.now.astimezone(tz)

        for module in (store_module, tickets_module, usage_module, kb_feedback_module):
            monkeypatch.setattr(module, "datetime", SetDatetime)

    def at(self, moment: datetime) -> None:
        self.now = moment


class Desk:
    """Customers' turns stored as the engine stores them, and agents working their tickets."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.clock = clock
        self.conversations = ConversationStore(engine)
        self.tickets = TicketDesk(engine)
        self.agents = AgentDirectory(engine)
        self.monitor = SlaMonitor(engine, SlaSettings(), clock=lambda: clock.now)

    def turn(self, sender: str, at: datetime, *events: dict[str, Any], channel: str = "rest", **options: Any) -> None:
        self.clock.at(at)
        stamped = [{**event, "timestamp": at.timestamp()} for event in events]
        owner = "queued" if options.get("new_handoff") else "bot"
        self.conversations.record_turn(
            sender, channel, stamped, {}, 0, owner, None, answered_at=first_answer(stamped), **options
        )

    def ask(self, sender: str, at: datetime, text: str, intent: str, *then: dict[str, Any], **options: Any) -> None:
        asked = {"event": "user", "text": text, "parse_data": {"text": text, "intent": {"name": intent}}}
        self.turn(sender, at, asked, *then, **options)

    def press(self, sender: str, at: datetime, answer_id: str, entry_id: str, *, helpful: bool) -> None:
        """A Helpful / Not helpful press, counted in the turn's transaction as the interceptor does."""
        press = {"event": "user", "text": f'/kb_feedback{{"helpful": {str(helpful).lower()}, "answer": "{answer_id}"}}'}
        count = partial(count_press, answer_id=answer_id, entry_id=entry_id, sender_id=sender, helpful=helpful)
        self.turn(sender, at, press, also=count)

    def hand_off(self, sender: str, at: datetime, text: str, reason: str, *, channel: str = "rest") -> str:
        ticket = NewHandoff(reason, "normal", {"intent": {"name": "dispute"}}, at + timedelta(minutes=30))
        self.ask(
            sender, at, text, "dispute", *say("utter_handoff"), handoff(reason), channel=channel, new_handoff=ticket
        )
        open_ticket = self.conversations.active_handoff(sender)
        assert open_ticket is not None
        return open_ticket.id

    def work(self, ticket: str, agent: Agent, opened: datetime, reply: int, resolve: int, rating: int) -> None:
        """`agent` replies `reply` minutes after the ticket opened, resolves it at `resolve`, gets `rating`."""
        self.clock.at(opened + timedelta(minutes=reply - 1))
        self.tickets.claim(ticket, agent)
        self.clock.at(opened + timedelta(minutes=reply))
        sent = self.tickets.reply(ticket, agent, "Let me look into it.")
        self.clock.at(opened + timedelta(minutes=resolve))
        self.tickets.resolve(ticket, agent)
        self.tickets.rate(sent.ticket.sender_id, rating)

    def check_sla(self, at: datetime) -> None:
        self.clock.at(at)
        self.monitor.check()


def say(action: str, policy: str = "SupportPolicy", **data: Any) -> list[dict[str, Any]]:
    return [
        {"event": "action", "name": action, "policy": policy, "confidence": 0.9},
        {"event": "bot", "text": action, "data": data, "metadata": {"utter_action": action}},
    ]


def answer(entry_id: str, answer_id: str) -> list[dict[str, Any]]:
    return say("action_answer_from_kb", custom={"kb_entry": entry_id, "answer_id": answer_id})


def handoff(reason: str) -> dict[str, Any]:
    return {"event": "handoff", "reason": reason, "priority": "normal"}


def day(number: int, hour: int, minute: int = 0) -> datetime:
    """Hour `hour` of the period's day `number` (0: its Monday)."""
    return SINCE + timedelta(days=number, hours=hour, minutes=minute)


@pytest.fixture
def week(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """On the web channel: 2 conversations the bot answered alone, 1 clarified then answered, 2
    handed off (replies after 20 and 45 minutes, the second after its SLA); around them, one on
    Telegram, one just before the period and one just after."""
    desk = Desk(db_engine, Clock(monkeypatch))
    knowledge = KnowledgeBaseStore(db_engine)
    knowledge.upsert(KBEntry(id="faq/pin", questions=["How do I reset my PIN?"], answer="In the app."))
    knowledge.upsert(KBEntry(id="faq/fees", questions=["What are the fees?"], answer="None."))
    ana, bo = desk.agents.add("ana", "Ana"), desk.agents.add("bo", "Bo")

    desk.ask("c1", day(1, 9), "reset my pin", "faq", *answer("faq/pin", "a1"))
    desk.press("c1", day(1, 9, 1), "a1", "faq/pin", helpful=True)
    desk.ask("c2", day(1, 10), "hello", "greet", *say("utter_greet", policy="RulePolicy"))
    desk.ask("c3", day(2, 9), "my card", "faq", *say("action_clarify"))
    desk.ask("c3", day(2, 9, 1), "/faq/pin", "faq", *answer("faq/pin", "a3"))
    c4 = desk.hand_off("c4", day(2, 11), "I want to dispute a charge", "out_of_scope")
    desk.work(c4, ana, day(2, 11), reply=20, resolve=50, rating=5)
    desk.ask("c5", day(3, 14), "what does it cost", "faq", *answer("faq/fees", "a5"))
    desk.press("c5", day(3, 14, 1), "a5", "faq/fees", helpful=False)
    c5 = desk.hand_off("c5", day(3, 14, 2), "that did not help", "low_confidence")
    desk.check_sla(day(3, 14, 28))  # 4 minutes before due: a warning
    desk.check_sla(day(3, 14, 33))  # past due, no reply: a breach
    desk.work(c5, bo, day(3, 14, 2), reply=45, resolve=90, rating=3)

    desk.ask("t1", day(4, 9), "reset my pin", "faq", *answer("faq/pin", "t1"), channel="telegram")
    desk.hand_off("t2", day(5, 12), "a person please", "customer_request", channel="telegram")
    desk.hand_off("before", SINCE - timedelta(seconds=1), "anyone there?", "low_confidence")
    desk.ask("after", UNTIL, "reset my pin", "faq", *answer("faq/pin", "a9"))
    return db_engine
