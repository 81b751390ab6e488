"""The demo bank bot through its REST API, with the real action server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble, open_database
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from tests.demo_bot import API_ACCESS, API_AUTH, REPO


def say(client: TestClient, text: str, sender: str) -> list[dict[str, Any]]:
    response = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200, response.text
    return response.json()


def tracker(client: TestClient, sender: str) -> dict[str, Any]:
    response = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH)
    assert response.status_code == 200
    return response.json()


def training_texts() -> str:
    return (REPO / "data" / "nlu.yml").read_text(encoding="utf-8").lower()


def test_paraphrased_faq_is_answered_with_its_entry_and_source(demo_client: TestClient, sender: str) -> None:
    question = "It's been a week and my new card still hasn't arrived"
    assert question.lower() not in training_texts()
    replies = say(demo_client, question, sender)
    assert len(replies) == 1
    assert replies[0]["recipient_id"] == sender
    assert replies[0]["custom"]["kb_entry"] == "faq/card_arrival"
    source = replies[0]["custom"]["source_url"]
    assert source.startswith("https://community.northwind-bank.example/t/")
    assert f"Source: {source}" in replies[0]["text"]
    state = tracker(demo_client, sender)
    assert state["handoff"] is None
    assert state["latest_message"]["intent"]["name"] == "faq/card_arrival"


def test_every_event_is_stored_before_the_reply_returns(demo_client: TestClient, sender: str) -> None:
    replies = say(demo_client, "hello there", sender)
    bot_texts = [e["text"] for e in tracker(demo_client, sender)["events"] if e["event"] == "bot"]
    assert [r["text"] for r in replies] == bot_texts
    user_events = [e for e in tracker(demo_client, sender)["events"] if e["event"] == "user"]
    assert user_events[0]["parse_data"]["intent"]["name"] == "greet"


def test_out_of_scope_question_is_handed_off_and_the_bot_goes_quiet(demo_client: TestClient, sender: str) -> None:
    replies = say(demo_client, "what will the weather be like in Lisbon this weekend?", sender)
    assert replies, "the customer is told a person will take over"
    state = tracker(demo_client, sender)
    handoff = state["handoff"]
    assert handoff is not None
    assert handoff["reason"] == "out_of_scope"
    assert handoff["status"] == "queued"
    packet = handoff["packet"]
    assert packet["transcript"][0]["text"].startswith("what will the weather")
    assert packet["channel"] == "rest"
    assert packet["sla_due_at"] == handoff["due_at"]
    # While a human owns the conversation the bot does not answer, but nothing is lost.
    assert say(demo_client, "hello? anyone?", sender) == []
    events = tracker(demo_client, sender)["events"]
    assert events[-1]["event"] == "user" and events[-1]["text"] == "hello? anyone?"


def test_asking_for_a_person_hands_off(demo_client: TestClient, sender: str) -> None:
    say(demo_client, "I want to talk to a real person please", sender)
    handoff = tracker(demo_client, sender)["handoff"]
    assert handoff is not None and handoff["reason"] == "customer_request"
    assert tracker(demo_client, sender)["paused"] is True


def test_custom_action_runs_on_the_real_action_server(demo_client: TestClient, sender: str) -> None:
    replies = say(demo_client, "can you track my card order CD-482913 please", sender)
    text = " ".join(r["text"] for r in replies)
    assert "CD-482913" in text
    state = tracker(demo_client, sender)
    assert state["slots"]["order_number"] == "CD-482913"
    actions = [e["name"] for e in state["events"] if e["event"] == "action"]
    assert "action_card_delivery_status" in actions


def test_custom_action_asks_for_a_missing_order_number(demo_client: TestClient, sender: str) -> None:
    replies = say(demo_client, "I'd like to track the status of my card order", sender)
    assert "order number" in " ".join(r["text"] for r in replies).lower()
    replies = say(demo_client, "my order number is CD-733101", sender)
    assert "CD-733101" in " ".join(r["text"] for r in replies)


def test_model_parse_has_rasa_shape_and_kb_candidates(demo_client: TestClient, sender: str) -> None:
    body = demo_client.post("/model/parse", json={"text": "how do I activate my card"}, headers=API_AUTH).json()
    assert set(body) >= {"text", "intent", "entities", "intent_ranking", "kb_candidates"}
    assert body["intent"]["name"] == body["intent_ranking"][0]["name"]
    assert 0.0 <= body["intent"]["confidence"] <= 1.0
    assert body["kb_candidates"][0]["id"] == "faq/activate_my_card"
    assert {"score", "confidence", "dense", "lexical"} <= set(body["kb_candidates"][0])


def test_bad_input_gets_a_clear_error_and_stores_nothing(demo_client: TestClient, sender: str) -> None:
    post = demo_client.post
    empty = post("/webhooks/rest/webhook", json={"sender": sender, "message": "   "})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    huge = post("/webhooks/rest/webhook", json={"sender": sender, "message": "a" * 100_000})
    assert huge.status_code == 413 and "limit" in huge.json()["error"]
    broken = post(
        "/webhooks/rest/webhook",
        content=b'{"sender": sender, "message": ',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]
    numeric = post("/webhooks/rest/webhook", json={"sender": 42, "message": "hi"})
    assert numeric.status_code == 422 and "sender" in numeric.json()["error"]
    spaced = post("/webhooks/rest/webhook", json={"sender": "a b", "message": "hi"})
    assert spaced.status_code == 422 and "sender" in spaced.json()["error"]
    missing = post("/webhooks/rest/webhook", json={"message": "hi"})
    assert missing.status_code == 422 and "sender" in missing.json()["error"]
    assert tracker(demo_client, sender)["events"] == []


def test_rest_channel_accepts_json_sent_without_a_json_content_type(demo_client: TestClient, sender: str) -> None:
    # `curl -d '{...}'` sends application/x-www-form-urlencoded; Rasa reads the JSON anyway.
    response = demo_client.post(
        "/webhooks/rest/webhook",
        content=f'{{"sender": "{sender}", "message": "hello"}}'.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.json()[0]["recipient_id"] == sender


def test_health_and_openapi_docs(demo_client: TestClient, sender: str) -> None:
    health = demo_client.get("/health").json()
    assert health["status"] == "ok" and health["kb_entries"] >= 77
    paths = demo_client.get("/openapi.json").json()["paths"]
    assert {"/webhooks/rest/webhook", "/model/parse", "/conversations/{sender_id}/tracker"} <= set(paths)
    assert demo_client.get("/docs").status_code == 200


def test_single_question_community_entry_is_answerable(
    demo_project: Path, demo_training: TrainResult, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    store = KnowledgeBaseStore(open_database(load_project(demo_project), url))
    store.upsert(
        KBEntry(
            "community:login-e1043",
            ["Login fails with error E-1043"],
            "E-1043 means the clock on your phone is off. Turn on automatic date and time, then log in again.",
            source_url="https://community.northwind-bank.example/t/login-e1043/2002",
        )
    )
    bot = assemble(demo_project, model_dir=demo_training.model_dir, database_url=url)
    with TestClient(create_app(bot, API_ACCESS)) as client:
        replies = say(client, "my login fails with error E-1043", "e1043-a")
        assert replies[0]["custom"]["kb_entry"] == "community:login-e1043"
        assert "Source: https://community.northwind-bank.example/t/login-e1043/2002" in replies[0]["text"]

        # A looser wording is not enough to answer outright, but enough to ask.
        question = say(client, "E-1043 error when logging in", "e1043-b")[0]
        assert question["buttons"][0]["title"] == "Login fails with error E-1043"
        assert question["buttons"][-1]["payload"] == "/human_handoff"
        answer = say(client, question["buttons"][0]["payload"], "e1043-b")
        assert answer[0]["custom"]["kb_entry"] == "community:login-e1043"

        # Two failed turns in a row (two clarifications unanswered) go to a person.
        assert say(client, "E-1043 error when logging in", "e1043-c")[0]["buttons"]
        say(client, "still a login error E-1043", "e1043-c")
        handoff = tracker(client, "e1043-c")["handoff"]
        assert handoff is not None and handoff["reason"] == "failed_turns"
