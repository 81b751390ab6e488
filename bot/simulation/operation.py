"""A stretch of days of a support operation played for real: every customer message goes
through the engine and every agent step through the ticket desk, each at its simulated moment
(`time_machine` moves the process's clock there), so the database holds what a live deployment
would have written over those days.

Steps run in time order from one queue: customers' messages, agents taking, answering and
resolving tickets, and the SLA monitor's checks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import time_machine

from crowddesk.bot.conversations.clock import utc_now
from crowddesk.bot.desk import sla_monitor
from crowddesk.bot.desk.agents import Agent, AgentDirectory
from crowddesk.bot.desk.rating import rating_request
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.simulation.customer import Customer, Reply, asks_rating
from crowddesk.bot.simulation.team import Handling, Staffing, Team
from crowddesk.bot.simulation.traffic import Question, QuestionMix, arrivals
from crowddesk.connectors.types import InboundMessage, OutboundMessage

# The channels customers write on and their shares of the traffic.
CHANNELS = {"whatsapp": 0.3, "messenger": 0.25, "webchat": 0.2, "telegram": 0.15, "slack": 0.1}
GREETING, GREET = "hi", 0.25  # a quarter of customers say hello before asking
MAX_MESSAGES = 5  # a customer gives up after this many messages without a person
SLA_CHECK = timedelta(minutes=5)
AGENT_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Eun-ji", "Femi", "Gus", "Hana", "Ivo", "Jas")
GENERIC_REPLY = "Thanks for waiting. I've looked into this and sorted it on our side; anything else I can do?"


@dataclass(frozen=True)
class Traffic:
    """What the operation sees: customers per weekday, the questions they ask and the share
    of questions nobody taught the bot."""

    per_weekday: float
    repeat: Sequence[Question]
    new: Sequence[Question]
    new_share: float = 0.25


@dataclass
class Played:
    """What happened: customers, messages they sent, tickets opened and resolved, ratings given."""

    customers: int = 0
    messages: int = 0
    tickets: int = 0
    resolved: int = 0
    ratings: int = 0
    handled: list[Handling] = field(default_factory=list)


@dataclass(frozen=True)
class Asker:
    """One simulated customer: where they write from, their id there, what they came to ask."""

    channel: str
    sender: str
    question: Question


Step = Callable[[], Awaitable[None]]


def _staff(agents: AgentDirectory, size: int) -> list[Agent]:
    """The team's accounts, created on first use."""
    staff: list[Agent] = []
    for name in itertools.islice(itertools.cycle(AGENT_NAMES), size):
        agent_id = f"{name.lower().replace('é', 'e')}-{len(staff) + 1}"
        staff.append(agents.get(agent_id) or agents.add(agent_id, f"{name} (simulated)"))
    return staff


class Operation:
    """Plays traffic against the engine and the desk, `staffing`'s team working the queue, seeded."""

    def __init__(
        self,
        engine: Engine,
        agents: AgentDirectory,
        tickets: TicketDesk,
        sla: SlaMonitor,
        handoff_intents: Sequence[str],
        staffing: Staffing,
        *,
        seed: int = 0,
    ) -> None:
        self.engine, self.tickets, self.sla = engine, tickets, sla
        self.rng = np.random.default_rng(seed)
        self.customer = Customer(self.rng, handoff_intents)
        self.team = Team(self.rng, staffing)
        self.staff = _staff(agents, staffing.agents)
        self._queue: list[tuple[datetime, int, Step]] = []
        self._order = itertools.count()
        self.played = Played()

    async def play(
        self,
        traffic: Traffic,
        since: datetime,
        until: datetime,
        progress: Callable[[datetime, Played], None] | None = None,
    ) -> Played:
        """Every step due before `until` (later ones never happen: tickets still open then stay
        open); `progress` hears each simulated day's end."""
        mix = QuestionMix(self.rng, traffic.repeat, traffic.new, traffic.new_share)
        days = (until - since).days + 1
        channels = list(CHANNELS)
        shares = np.array(list(CHANNELS.values()))
        for number, moment in enumerate(arrivals(self.rng, since, days, traffic.per_weekday)):
            channel = channels[self.rng.choice(len(channels), p=shares)]
            sender = f"{channel}-{moment:%m%d}-{number:05d}"
            self._at(moment, self._arrive(Asker(channel, sender, mix.draw())))
        checks = since
        while checks < until:
            self._at(checks, self._check_sla)
            checks += SLA_CHECK
        day_end = since + timedelta(days=1)
        # The SLA warnings of a replayed week are stored on the tickets, not news to an operator.
        sla_log = logging.getLogger(sla_monitor.__name__)
        level = sla_log.level
        sla_log.setLevel(logging.ERROR)
        try:
            while self._queue and self._queue[0][0] < until:
                moment, _, step = heapq.heappop(self._queue)
                while progress is not None and moment >= day_end:
                    progress(day_end, self.played)
                    day_end += timedelta(days=1)
                with time_machine.travel(moment):
                    await step()
        finally:
            sla_log.setLevel(level)
            self._queue.clear()
        return self.played

    def _at(self, moment: datetime, step: Step) -> None:
        heapq.heappush(self._queue, (moment, next(self._order), step))

    def _arrive(self, asker: Asker) -> Step:
        async def arrive() -> None:
            self.played.customers += 1
            if self.rng.random() < GREET:
                await self._say(asker, GREETING)
            await self._converse(asker, asker.question.text, MAX_MESSAGES)

        return arrive

    async def _converse(self, asker: Asker, text: str, left: int) -> None:
        """The customer sends `text`; then either a ticket is open for a person, or the customer
        sends what they make of the replies a little later, or leaves."""
        replies = await self._say(asker, text)
        ticket = self.engine.store.active_handoff(asker.sender)
        if ticket is not None:
            self._ticket(asker, ticket.id, ticket.created_at)
            return
        then: Reply | None = self.customer.next_message(asker.question, replies)
        if then is None or left <= 1:
            return

        async def reply() -> None:
            if then.last:
                replies = await self._say(asker, then.text)
                self._rate_if_asked(asker, asks_rating(replies), timedelta(0))
            else:
                await self._converse(asker, then.text, left - 1)

        self._at(utc_now() + then.after, reply)

    def _ticket(self, asker: Asker, ticket_id: str, opened_at: datetime) -> None:
        """A person works the ticket: takes it, answers, resolves it; the customer may rate."""
        self.played.tickets += 1
        handling = self.team.take(opened_at)
        agent = self.staff[handling.agent]
        answer = self._answer(asker)

        async def take() -> None:
            self.tickets.claim(ticket_id, agent)

        async def answer_customer() -> None:
            self.tickets.reply(ticket_id, agent, answer)

        async def resolve() -> None:
            closing = rating_request(self.engine.renderer, asker.sender)
            self.tickets.resolve(ticket_id, agent, closing=closing)
            self.played.resolved += 1
            self.played.handled.append(handling)
            self._rate_if_asked(asker, bool(closing), handling.replied_at - opened_at)

        self._at(handling.taken_at, take)
        self._at(handling.replied_at, answer_customer)
        self._at(handling.resolved_at, resolve)

    def _rate_if_asked(self, asker: Asker, asked: bool, waited: timedelta) -> None:
        """When the bot asked for a rating, the customer may give one a little later."""
        rating = self.customer.rating(waited) if asked else None
        if rating is None:
            return

        async def rate() -> None:
            await self._say(asker, rating)
            self.played.ratings += 1

        self._at(utc_now() + timedelta(minutes=1), rate)

    def _answer(self, asker: Asker) -> str:
        """What the agent writes: the project's answer to the topic, or a generic reply."""
        topic = asker.question.topic
        if topic is not None and self.engine.renderer.has(f"utter_{topic}"):
            return f"Thanks for waiting. {self.engine.renderer.render(f'utter_{topic}', asker.sender, {}).text}"
        return GENERIC_REPLY

    async def _say(self, asker: Asker, text: str) -> list[OutboundMessage]:
        self.played.messages += 1
        return await self.engine.handle(InboundMessage(asker.channel, asker.sender, text))

    async def _check_sla(self) -> None:
        self.sla.check()
