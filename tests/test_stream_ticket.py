"""The desk's event stream takes a short-lived, single-use ticket, never the bearer token."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import Engine

from crowddesk.bot.desk.agents import AgentDirectory, AuthError
from crowddesk.bot.desk.stream_tickets import StreamTickets
from tests.browser import LiveServer
from tests.test_desk_console import PASSWORD, sign_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_token(live_server: LiveServer, role: str = "agent") -> str:
    agent_id = f"{role}-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(agent_id, "Ana Agent", role=role)
    return live_server.bot.agents.issue_token(agent_id)


def first_line(url: str, stream_ticket: str) -> httpx.Response | str:
    """The stream's first line, or the refusal when it is not opened."""
    with httpx.stream("GET", f"{url}/desk/api/stream", params={"stream_ticket": stream_ticket}, timeout=30) as stream:
        if stream.status_code != 200:
            stream.read()
            return stream
        return next(stream.iter_lines())


def test_a_ticket_opens_the_stream_once(live_server: LiveServer) -> None:
    token = new_token(live_server)
    issued = httpx.post(f"{live_server.url}/desk/api/stream-ticket", headers=bearer(token))
    assert issued.status_code == 200
    ticket = issued.json()["stream_ticket"]
    assert issued.json()["expires_in"] == 60 and token not in ticket

    assert first_line(live_server.url, ticket) == "event: queue"
    again = first_line(live_server.url, ticket)
    assert isinstance(again, httpx.Response) and again.status_code == 401
    assert "already used" in again.json()["error"]


def test_a_bearer_token_in_the_stream_url_is_refused(live_server: LiveServer) -> None:
    token = new_token(live_server)
    refused = httpx.get(f"{live_server.url}/desk/api/stream", params={"token": token})
    assert refused.status_code == 401
    assert refused.json()["error"] == (
        "a token in the URL is refused (URLs get logged); get a stream ticket from POST /desk/api/stream-ticket"
    )
    missing = httpx.get(f"{live_server.url}/desk/api/stream")
    assert missing.status_code == 401 and "missing stream_ticket" in missing.json()["error"]


def test_only_a_signed_in_ticket_worker_gets_a_ticket(live_server: LiveServer) -> None:
    url = f"{live_server.url}/desk/api/stream-ticket"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers=bearer("cdk_not-a-token")).status_code == 401
    editor = httpx.post(url, headers=bearer(new_token(live_server, role="editor")))
    assert editor.status_code == 403


def test_an_expired_ticket_or_one_whose_token_was_revoked_opens_nothing(live_server: LiveServer) -> None:
    token = new_token(live_server)
    expired = StreamTickets(live_server.bot.database, lifetime=timedelta(seconds=-1)).issue(token)
    refused = first_line(live_server.url, expired)
    assert isinstance(refused, httpx.Response) and refused.status_code == 401
    assert "stream ticket expired" in refused.json()["error"]

    ticket = httpx.post(f"{live_server.url}/desk/api/stream-ticket", headers=bearer(token)).json()["stream_ticket"]
    live_server.bot.agents.revoke_token(token)  # signed out before the stream opened
    refused = first_line(live_server.url, ticket)
    assert isinstance(refused, httpx.Response) and refused.status_code == 401


def test_of_two_redeemers_of_one_ticket_only_one_gets_it(db_engine: Engine) -> None:
    agents = AgentDirectory(db_engine)
    agents.add("ana", "Ana")
    tickets = StreamTickets(db_engine)
    ticket = tickets.issue(agents.issue_token("ana"))
    assert agents.authenticate_token_hash(tickets.redeem(ticket)).id == "ana"
    with pytest.raises(AuthError, match="already used"):
        tickets.redeem(ticket)


def test_the_console_reconnects_with_a_fresh_ticket_and_never_puts_its_token_in_a_url(
    page: Page,
    live_server: LiveServer,
) -> None:
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(agent_id, "Ana Agent", password=PASSWORD)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    streams: list[str] = []

    def drop_the_first_stream(route: Route) -> None:
        streams.append(route.request.url)
        if len(streams) == 1:
            route.abort("connectionreset")  # as when a proxy or the network cuts the stream
        else:
            route.continue_()

    page.route("**/desk/api/stream?*", drop_the_first_stream)
    sign_in(page, live_server, agent_id, PASSWORD)
    expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)

    tickets = [parse_qs(urlsplit(url).query)["stream_ticket"][0] for url in streams]
    assert len(tickets) >= 2 and len(set(tickets)) == len(tickets)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('crowddesk.desk.session')).token")
    assert token and not any(token in url for url in urls)
