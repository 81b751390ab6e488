"""PII everywhere it can travel: suggestions from handoffs, entries written from the consoles,
the gap report, and (when configured) stored transcripts and logs."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from uvicorn.logging import AccessFormatter

from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.conversations.transcript_redaction import TranscriptRedactor
from crowddesk.bot.curation.gaps import gap_report
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.server.log_redaction import redacted_logs
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.nlu.encoders import Encoder
from tests.demo_bot import copy_demo_project
from tests.test_end_to_end import say
from tests.test_kb_curation import handed_off
from tests.test_kb_gaps import turn
from tests.test_kb_loop import token

CARD, EMAIL = "4111 1111 1111 1111", "jane.roe@example.com"
# The finding: what a customer wrote before asking for a person.
CUSTOMER_TEXT = f"My card {CARD} was charged twice for one payment, please write to {EMAIL}"
AGENT_REPLY = (
    "We refunded the second charge on card 4111-1111-1111-1111; the confirmation "
    f"went to {EMAIL}. Refunds of double charges take 3 working days."
)
LEAKS = ("4111", "jane.roe", "example.com")
REDACTED_TEXT = "My card [card] was charged twice for one payment, please write to [email]"


def leaked(value: Any) -> list[str]:
    """The pieces of the customer's card number or e-mail anywhere in `value` (as JSON)."""
    text = json.dumps(value)
    return [piece for piece in LEAKS if piece in text]


# -- the redactor on each kind ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CUSTOMER_TEXT, REDACTED_TEXT),
        ("card 4111-1111-1111-1111, exp 12/27", "card [card], exp 12/27"),
        ("Amex 3782 822463 10005 and Visa 4111111111111111.", "Amex [card] and Visa [card]."),
        ("order 4111 1111 1111 1112 and invoice 2024000123456", "order 4111 1111 1111 1112 and invoice 2024000123456"),
        ("Jane.Roe+bank@Mail.Example.COM wrote", "[email] wrote"),
        ("call 07700 900123, +49 151 12345678 or (555) 123-4567", "call [phone], [phone] or [phone]"),
        ("my iban is de89 3704 0044 0532 0130 00 thanks", "my iban is [iban] thanks"),
        ("IBAN DE89 3704 0044 0532 0130 00 OK?", "IBAN [iban] OK?"),
        ("id12 is my order number for the shoes", "id12 is my order number for the shoes"),
    ],
)
def test_each_kind_of_pii_is_redacted_and_look_alikes_are_kept(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


# -- suggestions, console entries, the gap report (store level) ---------------------------


def test_suggestions_from_handoffs_are_stored_redacted_and_so_is_an_editors_edit(db_engine: Engine) -> None:
    conversations, agents = ConversationStore(db_engine), AgentDirectory(db_engine)
    redactor = Redactor([r"\bACC-\d{6}\b"])  # a project's own redact_patterns
    tickets, suggestions = TicketDesk(db_engine, redactor=redactor), Suggestions(db_engine, redactor)
    ana = agents.add("ana", "Ana")
    ticket_id = handed_off(conversations, "c1", CUSTOMER_TEXT, "It's account ACC-123456")
    tickets.claim(ticket_id, ana)
    tickets.reply(ticket_id, ana, AGENT_REPLY)
    tickets.resolve(ticket_id, ana)

    [automatic] = suggestions.list()
    explicit = TicketSuggestions(db_engine, redactor).propose(ticket_id, [CUSTOMER_TEXT], AGENT_REPLY, "ana")

    assert automatic.questions == [REDACTED_TEXT, "It's account [redacted]"]
    assert automatic.answer.startswith(
        "We refunded the second charge on card [card]; the confirmation went to [email]."
    )
    assert (explicit.questions, explicit.answer) == (automatic.questions[:1], automatic.answer)
    entry = suggestions.approve(explicit.id, "ed", answer=f"Mail {EMAIL} about card {CARD}.")
    assert entry.answer == "Mail [email] about card [card]." and not leaked(entry.as_dict())


def test_the_gap_report_shows_questions_redacted(db_engine: Engine, minilm_encoder: Encoder) -> None:
    store = ConversationStore(db_engine)
    turn(store, "a", CUSTOMER_TEXT, "low_confidence")
    turn(store, "b", "Can I send my IBAN DE89 3704 0044 0532 0130 00 by post?", "action_default_fallback")

    examples = [e for cluster in gap_report(db_engine, minilm_encoder) for e in cluster.examples]

    assert sorted(examples) == [
        "Can I send my IBAN [iban] by post?",
        REDACTED_TEXT,
    ]


# -- configuration --------------------------------------------------------------------------


def privacy_config(path: Path, block: str) -> Path:
    path.write_text(
        "pipeline:\n  - name: SentenceEncoder\n  - name: CalibratedIntentClassifier\n"
        "  - name: KnowledgeBaseRetriever\n"
        f"policies:\n  - name: SupportPolicy\n    privacy:\n{block}"
    )
    return path


def test_privacy_settings_are_off_by_default_and_read_from_support_policy(tmp_path: Path) -> None:
    default = load_config(tmp_path / "missing.yml").policy.privacy
    assert (default.redact_transcripts, default.redact_logs) == (False, False)

    config = load_config(
        privacy_config(tmp_path / "config.yml", "      redact_transcripts: true\n      redact_logs: true\n")
    )

    assert (config.policy.privacy.redact_transcripts, config.policy.privacy.redact_logs) == (True, True)
    # Run-time settings: turning redaction on needs no retraining.
    off = load_config(privacy_config(tmp_path / "off.yml", "      redact_logs: false\n"))
    assert config.fingerprint_dict() == off.fingerprint_dict()


@pytest.mark.parametrize(
    ("block", "key", "reason"),
    [
        ("      redact_transcripts: sometimes\n", "policies[0].privacy.redact_transcripts", "true or false"),
        ("      redact_everything: true\n", "policies[0].privacy", "redact_everything"),
    ],
)
def test_a_bad_privacy_setting_names_its_key(tmp_path: Path, block: str, key: str, reason: str) -> None:
    with pytest.raises(ProjectFileError) as error:
        load_config(privacy_config(tmp_path / "config.yml", block))

    assert key in str(error.value) and reason in str(error.value)


# -- transcripts -----------------------------------------------------------------------------


def test_a_turn_is_stored_with_the_customers_words_redacted_and_the_bots_kept() -> None:
    redact = TranscriptRedactor(Redactor())
    parse = {
        "text": CUSTOMER_TEXT,
        "intent": {"name": "card_charged_twice", "confidence": 0.4},
        "entities": [{"entity": "email", "value": EMAIL}, {"entity": "rating", "value": 5.0}],
    }
    bot_line = {"event": "bot", "timestamp": 2.0, "text": f"We'll write to {EMAIL}."}  # the bot's own words
    events = [
        {"event": "user", "timestamp": 1.0, "text": CUSTOMER_TEXT, "original_text": CUSTOMER_TEXT, "parse_data": parse},
        bot_line,
    ]
    handoff = NewHandoff(
        "low_confidence",
        "normal",
        {
            "sender_id": "rest:jane",
            "summary": f"Customer asked: {CUSTOMER_TEXT!r}.",
            "entities": parse["entities"],
            "transcript": [
                {"role": "customer", "text": CUSTOMER_TEXT, "timestamp": 1.0},
                {"role": "bot", "text": bot_line["text"], "timestamp": 2.0},
            ],
        },
        datetime.now(UTC),
    )

    user, bot = redact.events(events)
    packet = (redact.handoff(handoff) or handoff).packet

    assert user["text"] == user["original_text"] == user["parse_data"]["text"] == REDACTED_TEXT
    assert user["parse_data"]["entities"] == [
        {"entity": "email", "value": "[email]"},
        {"entity": "rating", "value": 5.0},
    ]
    assert bot == bot_line and parse["text"] == CUSTOMER_TEXT  # nothing changed in place
    assert packet["summary"] == f"Customer asked: {REDACTED_TEXT!r}."
    assert packet["transcript"][1] == handoff.packet["transcript"][1] and not leaked(packet["transcript"][0])
    assert packet["entities"][0]["value"] == "[email]" and packet["sender_id"] == "rest:jane"
    assert redact.parse(None) is None and redact.handoff(None) is None


# -- logs -----------------------------------------------------------------------------------


class Collected(logging.Handler):
    """Keeps what it would write."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_handlers() -> Iterator[tuple[Collected, Collected]]:
    """A handler on the root logger (where CrowdDesk's loggers go) and one on uvicorn's access log."""
    root, access = Collected(), Collected()
    logging.getLogger().addHandler(root)
    logging.getLogger("uvicorn.access").addHandler(access)
    levels = {name: logging.getLogger(name).level for name in ("crowddesk", "uvicorn.access")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").propagate = False  # as uvicorn configures it
    yield root, access
    logging.getLogger("uvicorn.access").propagate = True
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().removeHandler(root)
    logging.getLogger("uvicorn.access").removeHandler(access)


def test_log_redaction_covers_crowddesks_and_uvicorns_logs_while_on(
    log_handlers: tuple[Collected, Collected],
) -> None:
    root, access = log_handlers
    engine_log, access_log = logging.getLogger("crowddesk.bot.dialogue.engine"), logging.getLogger("uvicorn.access")

    with redacted_logs(Redactor()):
        engine_log.warning("could not answer %r", CUSTOMER_TEXT)
        access_log.info('%s - "%s %s"', "127.0.0.1", "GET", f"/conversations/{EMAIL}/tracker")
        try:
            raise ValueError(f"bad card {CARD}")
        except ValueError:
            engine_log.exception("turn failed")
    engine_log.warning("after: %s", EMAIL)

    assert root.lines[0] == f"could not answer {REDACTED_TEXT!r}"
    assert access.lines == ['127.0.0.1 - "GET /conversations/[email]/tracker"']
    assert "ValueError: bad card [card]" in root.lines[1] and not leaked(root.lines[:2])
    assert root.lines[2] == f"after: {EMAIL}"  # off again once the server stops


def test_uvicorns_own_access_formatter_still_writes_a_redacted_line(
    log_handlers: tuple[Collected, Collected],
) -> None:
    # uvicorn's AccessFormatter unpacks the record's arguments: they must keep their shape.
    _, access = log_handlers
    access.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))

    with redacted_logs(Redactor()):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", f"/conversations/{EMAIL}/tracker", "1.1", 200
        )

    assert access.lines == ['127.0.0.1:50000 - "GET /conversations/[email]/tracker HTTP/1.1" 200 OK']


def test_log_redaction_left_off_changes_nothing(log_handlers: tuple[Collected, Collected]) -> None:
    root, _ = log_handlers

    with redacted_logs(Redactor(), enabled=False):
        logging.getLogger("crowddesk.bot.dialogue.engine").warning("mail %s", EMAIL)

    assert root.lines == [f"mail {EMAIL}"]


# -- the finding, end to end on the demo bot --------------------------------------------------


def call(client: TestClient, method: str, path: str, token: str, status: int = 200, **kwargs: Any) -> Any:
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def hand_off(client: TestClient, sender: str) -> tuple[list[dict[str, Any]], str]:
    """The customer writes their card number and e-mail, then asks for a person: (replies, ticket id)."""
    replies = say(client, CUSTOMER_TEXT, sender)
    conversations = client.app.state.bot.conversations
    if conversations.active_handoff(sender) is None:
        replies += say(client, "I want to talk to a real person please", sender)
    ticket = conversations.active_handoff(sender)
    assert ticket is not None
    return replies, ticket.id


def test_an_approved_suggestion_never_shows_a_customers_card_or_email(
    demo_client: TestClient,
    sender: str,
) -> None:
    replies, ticket_id = hand_off(demo_client, sender)
    agent = token(demo_client, "agent")
    call(demo_client, "POST", f"/desk/api/tickets/{ticket_id}/claim", agent)
    call(demo_client, "POST", f"/desk/api/tickets/{ticket_id}/reply", agent, json={"text": AGENT_REPLY})
    call(demo_client, "POST", f"/desk/api/tickets/{ticket_id}/resolve", agent)
    call(
        demo_client,
        "POST",
        f"/desk/api/tickets/{ticket_id}/kb-suggestion",
        agent,
        json={"question": CUSTOMER_TEXT, "answer": AGENT_REPLY},
    )

    editor = token(demo_client, "editor")
    mine = [s for s in call(demo_client, "GET", "/kb/api/suggestions", editor) if s["ticket_id"] == ticket_id]
    assert len(mine) == 2 and not leaked(mine)
    assert "[card]" in mine[0]["questions"][0] and "[email]" in mine[0]["answer"]
    entry = call(demo_client, "POST", f"/kb/api/suggestions/{mine[0]['id']}/approve", editor, json={})
    assert not leaked(entry)

    later = f"customer-{uuid.uuid4().hex[:12]}"
    offered = say(demo_client, "I was charged twice for one card payment", later)
    offered += say(demo_client, "my card payment was taken twice, can I get a refund?", later)
    assert not leaked(offered) and not leaked(replies)
    assert not leaked(call(demo_client, "GET", "/kb/api/gaps", editor))
    assert not leaked(call(demo_client, "GET", "/kb/api/entries", editor, params={"q": "charged twice"}))


def test_entries_written_from_the_kb_console_are_redacted(demo_client: TestClient) -> None:
    editor = token(demo_client, "editor")
    entry_id = f"manual:pii-{uuid.uuid4().hex[:8]}"

    created = call(
        demo_client,
        "POST",
        "/kb/api/entries",
        editor,
        status=201,
        json={"id": entry_id, "questions": [f"Is {EMAIL} your support address?"], "answer": f"Card {CARD} works."},
    )
    edited = call(
        demo_client,
        "PUT",
        f"/kb/api/entries/{entry_id}",
        editor,
        json={"questions": ["How do I reach you?"], "answer": "Call 07700 900123 or mail jane.roe@example.com."},
    )

    assert created["questions"] == ["Is [email] your support address?"]
    assert created["answer"] == "Card [card] works."
    assert edited["answer"] == "Call [phone] or mail [email]."
    history = call(demo_client, "GET", f"/kb/api/entries/{entry_id}/history", editor)
    assert not leaked(history)


@pytest.fixture(scope="module")
def private_client(
    tmp_path_factory: pytest.TempPathFactory,
    demo_training: TrainResult,
    action_server_url: str,
) -> Iterator[TestClient]:
    """The demo bot (its trained model) with `privacy.redact_transcripts` turned on."""
    project = copy_demo_project(tmp_path_factory.mktemp("private"))
    config = project / "config.yml"
    config.write_text(
        config.read_text().replace(
            "  - name: SupportPolicy\n", "  - name: SupportPolicy\n    privacy:\n      redact_transcripts: true\n", 1
        )
    )
    database = tmp_path_factory.mktemp("private-db") / "crowddesk.db"
    bot = assemble(
        project,
        model_dir=demo_training.model_dir,
        database_url=f"sqlite:///{database}",
        action_endpoint=action_server_url,
    )
    assert bot.project.config.policy.privacy.redact_transcripts
    with TestClient(create_app(bot)) as client:
        yield client


def test_stored_transcripts_and_tickets_are_redacted_when_configured(
    private_client: TestClient,
    sender: str,
) -> None:
    replies, ticket_id = hand_off(private_client, sender)
    say(private_client, f"my other card is 5500-0000-0000-0004, or mail {EMAIL}", sender)  # while queued

    conversations = private_client.app.state.bot.conversations
    stored = [e for e in conversations.events(sender) if e["event"] == "user"]
    ticket = conversations.get_handoff(ticket_id)
    record = conversations.get(sender)
    assert stored[0]["text"] == REDACTED_TEXT
    assert stored[-1]["text"] == "my other card is [card], or mail [email]"
    assert stored[0]["parse_data"]["text"] == stored[0]["text"]
    assert ticket is not None and record is not None
    assert not leaked(stored) and not leaked(ticket.packet) and not leaked(record.latest_message)
    assert ticket.packet["transcript"][0]["text"] == stored[0]["text"]
    assert replies and not leaked(replies)  # the bot still answered each message

    agent = token(private_client, "agent")
    detail = call(private_client, "GET", f"/desk/api/tickets/{ticket_id}", agent)
    assert not leaked(detail)
