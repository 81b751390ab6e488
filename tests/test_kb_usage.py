"""Per-entry usage: times served and Helpful / Not helpful feedback, through the demo bot, the
editor API and the CLI, counted exactly on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.cli.main import main
from crowddesk.bot.conversations.store import ConversationRow, ConversationStore, HandoffRow
from crowddesk.bot.dialogue.kb_feedback import KBAnswers
from crowddesk.bot.project.config import FeedbackSettings
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.webchat import history_frames
from crowddesk.knowledge_base.store import KBFeedbackRow, KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.knowledge_base.usage import UsageReport, count_served, record_feedback
from tests.demo_bot import API_ACCESS, REPO, copy_demo_project
from tests.test_end_to_end import say, tracker
from tests.test_kb_loop import call, token

# Answered outright with faq/card_arrival (see test_end_to_end).
QUESTION = "It's been a week and my new card still hasn't arrived"
ENTRY = "faq/card_arrival"
USAGE_KEYS = {"entry_id", "question", "status", "served", "helpful", "unhelpful", "last_served_at"}


def usage_of(client: TestClient, editor: str, entry_id: str = ENTRY) -> dict[str, Any]:
    return call(client, "GET", f"/kb/api/entries/{entry_id}", editor)["usage"]


def answered(client: TestClient, sender: str) -> dict[str, Any]:
    [answer] = say(client, QUESTION, sender)
    assert answer["custom"]["kb_entry"] == ENTRY
    return answer


def press(client: TestClient, answer: dict[str, Any], title: str, sender: str) -> list[dict[str, Any]]:
    [button] = [b for b in answer["buttons"] if b["title"] == title]
    return say(client, button["payload"], sender)


def test_a_kb_answer_is_counted_and_asks_whether_it_helped(demo_client: TestClient, sender: str) -> None:
    editor = token(demo_client, "editor")
    before = usage_of(demo_client, editor)
    started = datetime.now(UTC)

    answer = answered(demo_client, sender)

    assert [b["title"] for b in answer["buttons"]] == ["Helpful", "Not helpful"]
    assert "Did that answer your question?" in answer["text"]
    assert answer["text"].endswith(f"Source: {answer['custom']['source_url']}")
    after = usage_of(demo_client, editor)
    assert after["served"] == before["served"] + 1
    assert datetime.fromisoformat(after["last_served_at"]) >= started.replace(microsecond=0)
    assert (after["helpful"], after["unhelpful"]) == (before["helpful"], before["unhelpful"])


def test_helpful_is_thanked_and_counted_once_per_answer(demo_client: TestClient, sender: str) -> None:
    editor = token(demo_client, "editor")
    answer = answered(demo_client, sender)
    before = usage_of(demo_client, editor)

    thanks, rating_question = press(demo_client, answer, "Helpful", sender)
    [again] = press(demo_client, answer, "Helpful", sender)  # asked once is enough
    press(demo_client, answer, "Not helpful", sender)  # a change of mind: the first press stands

    assert thanks["text"].startswith("Glad that helped") and again["text"] == thanks["text"]
    assert rating_question["text"] == "How would you rate this conversation from 1 to 5?"
    after = usage_of(demo_client, editor)
    assert (after["helpful"], after["unhelpful"]) == (before["helpful"] + 1, before["unhelpful"])
    assert after["served"] == before["served"]
    events = tracker(demo_client, sender)["events"]
    pressed = [e for e in events if e["event"] == "user" and e["text"].startswith("/kb_feedback")]
    assert {e["parse_data"]["intent"]["name"] for e in pressed} == {"kb_feedback"}


def test_not_helpful_apologises_and_offers_a_person(demo_client: TestClient, sender: str) -> None:
    editor = token(demo_client, "editor")
    answer = answered(demo_client, sender)
    before = usage_of(demo_client, editor)

    [sorry] = press(demo_client, answer, "Not helpful", sender)

    assert sorry["text"].startswith("Sorry that didn't help")
    assert sorry["buttons"] == [{"title": "Talk to a person", "payload": "/human_handoff"}]
    assert usage_of(demo_client, editor)["unhelpful"] == before["unhelpful"] + 1
    assert tracker(demo_client, sender)["handoff"] is None
    say(demo_client, sorry["buttons"][0]["payload"], sender)
    assert tracker(demo_client, sender)["handoff"]["reason"] == "customer_request"
    # The conversation's outcomes, as the scorecard reads them: answered, then marked Not
    # helpful, then handed off, in that order.
    with sessionmaker(demo_client.app.state.bot.database)() as session:  # type: ignore[attr-defined]
        row = session.scalars(select(ConversationRow).where(ConversationRow.sender_id == sender)).one()
        assert row.answered_at is not None and row.unhelpful_at is not None and row.handed_off_at is not None
        assert row.answered_at < row.unhelpful_at < row.handed_off_at


def test_a_rating_after_helpful_rates_the_answer_not_an_earlier_ticket(demo_client: TestClient, sender: str) -> None:
    agent = token(demo_client, "agent")
    say(demo_client, "I want to talk to a real person please", sender)
    ticket = tracker(demo_client, sender)["handoff"]["id"]
    for verb in ("claim", "resolve"):
        call(demo_client, "POST", f"/desk/api/tickets/{ticket}/{verb}", agent)
    say(demo_client, "4", sender)  # the rating the resolved ticket asked for
    answer = answered(demo_client, sender)

    _, rating_question = press(demo_client, answer, "Helpful", sender)
    [thanks] = say(demo_client, rating_question["buttons"][4]["payload"], sender)  # 5

    assert thanks["text"] == "Thanks for your feedback, it helps us improve."
    with sessionmaker(demo_client.app.state.bot.database)() as session:  # type: ignore[attr-defined]
        rated = session.get(KBFeedbackRow, answer["custom"]["answer_id"])
        assert rated is not None and (rated.helpful, rated.rating) == (True, 5)
        assert session.get(HandoffRow, ticket).rating == 4, "the ticket keeps its own rating"


def test_a_press_on_someone_elses_answer_counts_nothing(demo_client: TestClient, sender: str) -> None:
    editor = token(demo_client, "editor")
    answer = answered(demo_client, sender)
    before = usage_of(demo_client, editor)

    [thanks] = press(demo_client, answer, "Helpful", f"other-{uuid.uuid4().hex[:8]}")

    assert thanks["text"].startswith("Glad that helped")
    assert usage_of(demo_client, editor) == before


def test_not_helpful_hands_off_when_the_config_says_so(demo_training: TrainResult, tmp_path: Path) -> None:
    (tmp_path / "bot").mkdir()
    project = copy_demo_project(tmp_path / "bot")
    config = project / "config.yml"
    config.write_text(config.read_text().replace("on_unhelpful: offer_handoff", "on_unhelpful: handoff"))
    bot = assemble(project, model_dir=demo_training.model_dir, database_url=f"sqlite:///{tmp_path / 'crowddesk.db'}")
    with TestClient(create_app(bot, API_ACCESS)) as client:
        answer = answered(client, "unhappy")
        replies = press(client, answer, "Not helpful", "unhappy")

        handoff = tracker(client, "unhappy")["handoff"]
        assert handoff is not None and handoff["reason"] == "customer_request"
        assert f"{ENTRY} marked not helpful" in handoff["packet"]["summary"]
        assert replies[0]["text"].startswith("I'm passing you to a member of our support team")
        assert UsageReport(bot.database).of(ENTRY).unhelpful == 1


def test_the_usage_report_is_for_editors_and_ordered(demo_client: TestClient, sender: str) -> None:
    answered(demo_client, sender)
    again = f"{sender}-again"  # asking twice in one conversation would read as frustration
    press(demo_client, answered(demo_client, again), "Not helpful", again)

    assert demo_client.get("/kb/api/usage").status_code == 401
    agent = token(demo_client, "agent")
    denied = demo_client.get("/kb/api/usage", headers={"Authorization": f"Bearer {agent}"})
    assert denied.status_code == 403
    editor = token(demo_client, "editor")
    by_served = call(demo_client, "GET", "/kb/api/usage?limit=5&order=served", editor)
    assert len(by_served) == 5 and all(set(line) == USAGE_KEYS for line in by_served)
    assert [line["served"] for line in by_served] == sorted((line["served"] for line in by_served), reverse=True)
    [card] = [line for line in by_served if line["entry_id"] == ENTRY]
    assert card["status"] == "published" and card["question"] and card["served"] >= 2
    by_unhelpful = call(demo_client, "GET", "/kb/api/usage?order=unhelpful", editor)
    assert by_unhelpful[0]["unhelpful"] >= 1
    assert len(by_unhelpful) == 50  # the default limit; never-served entries have zeros
    assert by_unhelpful[-1]["last_served_at"] is None and by_unhelpful[-1]["served"] == 0
    bad = demo_client.get("/kb/api/usage?order=popular", headers={"Authorization": f"Bearer {editor}"})
    assert bad.status_code == 422 and "order" in bad.text


def test_the_cli_prints_the_usage_table(
    demo_client: TestClient, demo_project: Path, sender: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answered(demo_client, sender)
    url = demo_client.app.state.bot.database.url.render_as_string(hide_password=False)

    code = main(["kb", "usage", "--limit", "3", "--project", str(demo_project), "--database-url", url])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split()[:5] == ["entry", "status", "served", "helpful", "unhelpful"]
    assert len(lines) == 4
    assert any(line.startswith(ENTRY) and " published " in line for line in lines[1:])
    assert (
        main(["kb", "usage", "--order", "unhelpful", "--json", "--project", str(demo_project), "--database-url", url])
        == 0
    )
    assert capsys.readouterr().out.lstrip().startswith("[")


def test_concurrent_turns_serving_one_entry_lose_no_count(db_engine: Engine) -> None:
    conversations = ConversationStore(db_engine)
    turns, threads = 25, 2

    def serve(sender: str) -> None:
        for _ in range(turns):
            conversations.record_turn(
                sender,
                "rest",
                [{"event": "bot", "timestamp": time.time(), "text": "answer"}],
                {},
                0,
                "bot",
                None,
                None,
                partial(count_served, entry_id="faq/fees"),
            )

    workers = [threading.Thread(target=serve, args=(f"customer-{n}",)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    usage = UsageReport(db_engine).of("faq/fees")
    assert usage.served == turns * threads and usage.last_served_at is not None


def test_feedback_counts_once_per_answer_on_both_databases(db_engine: Engine) -> None:
    KnowledgeBaseStore(db_engine).upsert(KBEntry("faq/fees", ["What are the fees?"], "None."))
    sessions = sessionmaker(db_engine)
    press_once = partial(record_feedback, answer_id="a1", entry_id="faq/fees", sender_id="c1")
    with sessions.begin() as session:
        count_served(session, "faq/fees")
        assert press_once(session, helpful=False) is True
    with sessions.begin() as session:
        assert press_once(session, helpful=True) is False
    with sessions.begin() as session:
        assert record_feedback(session, answer_id="a2", entry_id="faq/fees", sender_id="c2", helpful=True)

    [line] = UsageReport(db_engine).lines(order="unhelpful")
    assert line.as_dict() | {"last_served_at": None} == {
        "entry_id": "faq/fees",
        "question": "What are the fees?",
        "status": "published",
        "served": 1,
        "helpful": 1,
        "unhelpful": 1,
        "last_served_at": None,
    }
    assert UsageReport(db_engine).of("faq/never").counts() == {
        "served": 0,
        "helpful": 0,
        "unhelpful": 0,
        "last_served_at": None,
    }


def test_feedback_settings_are_checked_when_loaded(tmp_path: Path) -> None:
    project = copy_demo_project(tmp_path)
    config = project / "config.yml"
    config.write_text(config.read_text().replace("on_unhelpful: offer_handoff", "on_unhelpful: ask"))
    with pytest.raises(ProjectFileError, match=r"policies\[0\]\.feedback\.on_unhelpful.*offer_handoff"):
        load_project(project)
    without_responses = replace(load_project(REPO).domain, responses={})
    with pytest.raises(ValueError, match=r"feedback\.enabled is true.*utter_ask_kb_feedback"):
        KBAnswers(without_responses, ResponseRenderer(without_responses), FeedbackSettings(enabled=True))


def test_the_web_chat_shows_a_press_by_its_title(demo_client: TestClient, sender: str) -> None:
    press(demo_client, answered(demo_client, sender), "Helpful", sender)

    frames = history_frames(tracker(demo_client, sender)["events"])

    answer, pressed, thanks, rating_question = frames[-4:]
    assert [b["title"] for b in answer["buttons"]] == ["Helpful", "Not helpful"] and answer["source"]
    assert (pressed["role"], pressed["text"]) == ("customer", "Helpful")
    assert thanks["buttons"] == []
    assert [b["title"] for b in rating_question["buttons"]] == ["1", "2", "3", "4", "5"]
