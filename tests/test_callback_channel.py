"""The callback channel end to end: the demo bot's replies and an agent's, POSTed to a local URL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.app import create_app
from crowddesk.bot.training.trainer import TrainResult
from tests.demo_bot import API_ACCESS, API_AUTH, demo_bot_with_credentials

GUARD_SECONDS = 60  # only a hung test ever waits this long


class Receiver:
    """The customer's system behind the callback URL: records what it accepts, and answers a
    scripted list of error statuses to messages containing a given text before accepting them."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refusals: dict[str, list[int]] = {}
        self.attempts: dict[str, int] = {}
        self.keys: dict[str, list[str | None]] = {}  # the Idempotency-Key of each attempt, by text
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.answer(body, self.headers.get("Idempotency-Key"))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bot-replies"

    def answer(self, body: dict[str, Any], key: str | None) -> int:
        with self._changed:
            text = body.get("text", "")
            self.attempts[text] = self.attempts.get(text, 0) + 1
            self.keys.setdefault(text, []).append(key)
            for fragment, statuses in self.refusals.items():
                if fragment in text and statuses:
                    return statuses.pop(0)
            self.accepted.append(body)
            self._changed.notify_all()
            return 200

    def wait_for(self, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: any(found(b) for b in self.accepted), GUARD_SECONDS), (
                f"no such message among {self.accepted}"
            )
            return next(b for b in self.accepted if found(b))

    def texts_for(self, sender: str) -> list[str]:
        with self._changed:
            return [b["text"] for b in self.accepted if b["recipient_id"] == sender]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="module")
def client(
    demo_project: Path, demo_training: TrainResult, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    bot = demo_bot_with_credentials(
        demo_project, demo_training, tmp_path_factory.mktemp("callback"), f'rest:\ncallback:\n  url: "{receiver.url}"\n'
    )
    with TestClient(create_app(bot, API_ACCESS)) as client:
        yield client


def say(client: TestClient, sender: str, text: str) -> None:
    response = client.post("/webhooks/callback/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200 and response.text == "success"


def desk(client: TestClient, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post(f"/desk/api{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_bot_replies_are_posted_to_the_callback_url(client: TestClient, receiver: Receiver, sender: str) -> None:
    say(client, sender, "hello there")
    reply = receiver.wait_for(lambda b: b["recipient_id"] == sender)
    assert reply["text"]


def test_bad_requests_are_refused_and_send_nothing(client: TestClient, receiver: Receiver, sender: str) -> None:
    empty = client.post("/webhooks/callback/webhook", json={"sender": sender, "message": "  "})
    assert empty.status_code == 400
    broken = client.post("/webhooks/callback/webhook", content=b"{not json")
    assert broken.status_code == 400
    assert client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["events"] == []


def test_an_agent_reply_after_handoff_reaches_the_callback_url_once_despite_errors(
    client: TestClient, receiver: Receiver, sender: str
) -> None:
    say(client, sender, "I want to speak to a human")
    ticket = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["handoff"]
    assert ticket is not None
    agents = client.app.state.bot.agents
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    agents.add(agent_id, "Ana Agent")
    token = agents.issue_token(agent_id)
    desk(client, f"/tickets/{ticket['id']}/claim", token)

    greeting = f"Hi, Ana here ({sender}). Let me look at your account."
    receiver.refusals[sender] = [429, 503]  # the customer's system is busy, then down, then back
    desk(client, f"/tickets/{ticket['id']}/reply", token, json={"text": greeting})
    receiver.wait_for(lambda b: b["text"] == greeting)
    assert receiver.texts_for(sender).count(greeting) == 1
    assert receiver.attempts[greeting] == 3
    # Every attempt carries the same key, so a receiver can drop a repeat sent after a crash.
    [key] = set(receiver.keys[greeting])
    assert key is not None and key.startswith("outbox-")

    desk(client, f"/tickets/{ticket['id']}/resolve", token)
    rating = receiver.wait_for(lambda b: b["recipient_id"] == sender and "rate" in b["text"].lower())
    assert rating["buttons"]
    texts = receiver.texts_for(sender)
    assert texts.index(greeting) < texts.index(rating["text"])


def test_a_message_sent_again_with_its_message_id_is_answered_once(
    client: TestClient, receiver: Receiver, sender: str
) -> None:
    first = {"sender": sender, "message": "hello there", "message_id": "m1"}
    for _ in range(2):
        assert client.post("/webhooks/callback/webhook", json=first).text == "success"
    refused = client.post("/webhooks/callback/webhook", json={"sender": sender, "message": " ", "message_id": "m2"})
    assert refused.status_code == 400  # an API client hears why, as without a message_id
    say(client, sender, "/thanks")
    # Replies to one recipient are delivered in order: once the thanks arrived, a second answer
    # to the greeting (or an apology for the refused message) would have too.
    thanks = {v.text for v in client.app.state.bot.project.domain.responses["utter_thanks"]}
    receiver.wait_for(lambda b: b["recipient_id"] == sender and b["text"] in thanks)
    events = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["hello there", "/thanks"]
    assert receiver.texts_for(sender) == [e["text"] for e in events if e["event"] == "bot"]
