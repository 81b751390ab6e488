"""The Slack desk: handoff tickets posted to a Slack channel and worked from there.

Set `desk_channel` in the `slack:` block of credentials.yml. Each queued ticket is posted there
with its packet and a Claim button; Claim and Resolve act as the pressing Slack user's agent,
`slack-<user id>`, created with role `agent` on their first Claim (anyone in the channel can
work tickets; disable that agent to stop one person). A reply in the ticket's thread is the
agent's reply: it goes through `TicketDesk.reply`, so through the outbox to the customer's own
channel. The desk follows its tickets by reading the store every `poll_seconds`: the customer's
new messages appear in the thread, and a claim or resolve made in the web console or the API
updates the message.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine as SqlEngine

from crowddesk.bot.conversations.states import TicketStatus
from crowddesk.bot.conversations.store import ConversationStore, HandoffRecord
from crowddesk.bot.desk.agents import Agent, AgentDirectory, AgentExists
from crowddesk.bot.desk.slack_blocks import CLAIM_ACTION, RESOLVE_ACTION, SLACK_AGENT_PREFIX, render_ticket
from crowddesk.bot.desk.slack_posts import DeskPost, DeskPosts
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.connectors.base import DeliveryError
from crowddesk.connectors.slack import SlackChannel
from crowddesk.connectors.slack_blocks import escape, unformat
from crowddesk.errors import CrowdDeskError, Forbidden, Rejected

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
MAX_AGENT_NAME = 128
SENT_REACTION = "white_check_mark"

Closing = Callable[[str], list[dict[str, Any]]]
"""The bot events to store when a ticket is resolved (the rating question), by sender id."""


def slack_agent(agents: AgentDirectory, user_id: str, name: str) -> Agent:
    """The agent a Slack user works as, created on first use; refused if disabled or not an agent.
    A blank Slack display name falls back to the user id."""
    agent_id = f"{SLACK_AGENT_PREFIX}{user_id}"
    agent = agents.get(agent_id)
    if agent is None:
        try:
            agent = agents.add(agent_id, name.strip()[:MAX_AGENT_NAME] or user_id)
        except AgentExists:
            # Either it exists but is disabled, or another request created it a moment ago.
            agent = agents.get(agent_id)
            if agent is None:
                raise Forbidden(f"your CrowdDesk agent account {agent_id} is disabled") from None
        except ValueError as exc:  # an id the directory refuses; "disabled" would be untrue
            raise Rejected(f"can't create your CrowdDesk agent account: {exc}") from None
    if not agent.can("agent"):
        raise Forbidden(f"your CrowdDesk role {agent.role!r} can't work tickets")
    return agent


class SlackDesk:
    """Posts tickets to `desk_channel` and answers its buttons and thread replies."""

    def __init__(
        self,
        slack: SlackChannel,
        desk_channel: str,
        *,
        tickets: TicketDesk,
        agents: AgentDirectory,
        conversations: ConversationStore,
        closing: Closing,
        database: SqlEngine,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.slack = slack
        self.channel = desk_channel
        self.tickets = tickets
        self.agents = agents
        self.conversations = conversations
        self.closing = closing
        self.posts = DeskPosts(database, desk_channel)
        self.poll_seconds = poll_seconds
        self._redraw_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        slack.app.action(CLAIM_ACTION)(self._on_claim)
        slack.app.action(RESOLVE_ACTION)(self._on_resolve)
        # SlackChannel's own message listener takes every channel but this one.
        slack.app.event("message")(self._on_message)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Follow the tickets in the background while the server runs."""
        await asyncio.to_thread(self.posts.create_table)
        task = asyncio.get_running_loop().create_task(self._follow(), name="slack-desk")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _follow(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                logger.exception("Slack desk: following tickets failed; trying again")
            await asyncio.sleep(self.poll_seconds)

    async def sync(self) -> None:
        """Post tickets that are new to the desk, then bring every open post up to date."""
        for ticket_id in await asyncio.to_thread(self.posts.unposted):
            await self._post(ticket_id)
        for post in await asyncio.to_thread(self.posts.open):
            await self._catch_up(post)

    # -- following tickets ----------------------------------------------------------------

    async def _post(self, ticket_id: str) -> None:
        if not await asyncio.to_thread(self.posts.reserve, ticket_id):
            return  # another process is posting it
        try:
            ticket = await asyncio.to_thread(self.conversations.get_handoff, ticket_id)
            if ticket is None:  # erased with its conversation meanwhile
                return
            events = await asyncio.to_thread(self.conversations.events, ticket.sender_id)
            text, blocks = render_ticket(ticket)
            posted = await self.slack.post(channel=self.channel, text=text, blocks=blocks)
        except DeliveryError as exc:
            logger.warning("Slack desk: posting ticket %s failed, will try again: %s", ticket_id, exc)
            await asyncio.to_thread(self.posts.release, ticket_id)
            return
        except BaseException:
            await asyncio.to_thread(self.posts.release, ticket_id)
            raise
        await asyncio.to_thread(
            self.posts.posted, ticket_id, str(posted["ts"]), ticket.status, ticket.assigned_to, len(events)
        )

    async def _catch_up(self, post: DeskPost) -> None:
        ticket = await asyncio.to_thread(self.conversations.get_handoff, post.ticket_id)
        if ticket is None:  # the conversation was erased: nothing left to follow
            await asyncio.to_thread(self.posts.shown, post.ticket_id, TicketStatus.RESOLVED, post.assigned_to)
            return
        events = await asyncio.to_thread(self.conversations.events, ticket.sender_id, post.followed_events)
        new = len(events)
        if new and await asyncio.to_thread(
            self.posts.follow, post.ticket_id, post.followed_events, post.followed_events + new
        ):
            for line in filter(None, map(thread_line, events)):
                await self._say(post.ts, line)
        if (ticket.status, ticket.assigned_to) != (post.status, post.assigned_to):
            await self._show(ticket.id, post.ts)

    async def _show(self, ticket_id: str, ts: str) -> None:
        """Redraw the ticket's message for its status now. One redraw per ticket at a time, each
        reading the ticket afresh, so a slower one can't put back an older status."""
        async with self._redraw_locks.setdefault(ticket_id, asyncio.Lock()):
            ticket = await asyncio.to_thread(self.conversations.get_handoff, ticket_id)
            if ticket is None:
                return
            text, blocks = render_ticket(ticket)
            try:
                await self.slack.client.chat_update(channel=self.channel, ts=ts, text=text, blocks=blocks)
            except SlackApiError as exc:
                logger.warning("Slack desk: updating ticket %s failed: %s", ticket_id, exc.response.get("error"))
                return
            await asyncio.to_thread(self.posts.shown, ticket_id, ticket.status, ticket.assigned_to)

    async def _say(self, thread_ts: str, text: str) -> None:
        try:
            await self.slack.post(channel=self.channel, thread_ts=thread_ts, text=text)
        except DeliveryError as exc:
            logger.warning("Slack desk: posting in thread %s failed: %s", thread_ts, exc)

    async def _tell(self, user: str, text: str, thread_ts: str | None = None) -> None:
        """A message only `user` sees (why their click or reply did nothing)."""
        try:
            await self.slack.client.chat_postEphemeral(
                channel=self.channel, user=user, text=text, thread_ts=thread_ts or None
            )  # None: not sent
        except SlackApiError as exc:
            logger.warning("Slack desk: telling %s failed: %s", user, exc.response.get("error"))

    # -- what agents do in Slack ----------------------------------------------------------

    async def _on_claim(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        self.slack.spawn(self._act(body, action, self._claim), "desk claim")

    async def _on_resolve(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        self.slack.spawn(self._act(body, action, self._resolve), "desk resolve")

    async def _act(
        self, body: dict[str, Any], action: dict[str, Any], step: Callable[[Agent, HandoffRecord], HandoffRecord]
    ) -> None:
        user = body["user"]
        ticket_id = str(action.get("value") or "")
        post = await asyncio.to_thread(self.posts.get, ticket_id)
        ticket = await asyncio.to_thread(self.conversations.get_handoff, ticket_id)
        if post is None or ticket is None:
            await self._tell(user["id"], f"Ticket {ticket_id} is not on this desk.")
            return
        try:
            agent = await asyncio.to_thread(
                slack_agent, self.agents, user["id"], user.get("name") or user.get("username") or user["id"]
            )
            await asyncio.to_thread(step, agent, ticket)
        except CrowdDeskError as exc:
            await self._tell(user["id"], f"That didn't work: {exc}.")
        await self._show(ticket_id, post.ts)

    def _claim(self, agent: Agent, ticket: HandoffRecord) -> HandoffRecord:
        return self.tickets.claim(ticket.id, agent)

    def _resolve(self, agent: Agent, ticket: HandoffRecord) -> HandoffRecord:
        return self.tickets.resolve(ticket.id, agent, closing=self.closing(ticket.sender_id))

    async def _on_message(self, event: dict[str, Any]) -> None:
        thread = event.get("thread_ts")
        if (
            event.get("channel") != self.channel
            or not thread
            or thread == event.get("ts")
            or event.get("subtype")
            or event.get("bot_id")
            or not event.get("user")
        ):
            return  # only a person's reply in a thread counts
        self.slack.spawn(self._reply(event, str(thread)), "desk reply")

    async def _reply(self, event: dict[str, Any], thread: str) -> None:
        post = await asyncio.to_thread(self.posts.by_ts, thread)
        if post is None:
            return  # a thread under some other message in the channel
        user = str(event["user"])
        agent = await asyncio.to_thread(self.agents.get, f"{SLACK_AGENT_PREFIX}{user}")
        if agent is None:
            await self._tell(
                user, "Press Claim on the ticket first; then your replies here reach the customer.", thread
            )
            return
        try:
            await asyncio.to_thread(self.tickets.reply, post.ticket_id, agent, unformat(str(event.get("text") or "")))
        except CrowdDeskError as exc:
            await self._tell(user, f"Not sent to the customer: {exc}.", thread)
            return
        try:
            await self.slack.client.reactions_add(channel=self.channel, timestamp=event["ts"], name=SENT_REACTION)
        except SlackApiError as exc:
            logger.warning("Slack desk: confirming a reply failed: %s", exc.response.get("error"))


def thread_line(event: dict[str, Any]) -> str | None:
    """How a new conversation event reads in the ticket's thread; None for those not shown
    (bot turns, and replies agents wrote in Slack, which are in the thread already)."""
    if event["event"] == "user":
        return f"*Customer:* {escape(str(event.get('text') or ''))}"
    agent_id = str((event.get("metadata") or {}).get("agent_id") or "")
    if event["event"] == "bot" and agent_id and not agent_id.startswith(SLACK_AGENT_PREFIX):
        name = (event.get("metadata") or {}).get("agent_name") or agent_id
        return f"*{escape(str(name))}* (web desk): {escape(str(event.get('text') or ''))}"
    return None
