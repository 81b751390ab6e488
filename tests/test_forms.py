"""Forms run through the real engine as Rasa runs them: asked slot by slot, filled by their
mappings (with conditions), interrupted and resumed by rules, validated by a real rasa_sdk
FormValidationAction, and with no action server at all when they need no validation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crowddesk.bot.dialogue.tracker import DialogueTracker
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.bot.server.assemble import Bot, assemble, models_dir
from crowddesk.bot.training.trainer import train
from crowddesk.connectors.types import InboundMessage
from tests.demo_bot import free_port
from tests.test_project_loading import write

ACTIONS = Path(__file__).parent / "rasa_project_actions" / "formbot"

DOMAIN = """\
version: "3.1"
intents: [greet, ask_balance, inform, affirm, deny, chitchat]
entities: [account]
slots:
  account:
    type: text
    mappings:
    - type: from_entity
      entity: account
      conditions:
      - active_loop: verify_form
        requested_slot: account
  confirmed:
    type: bool
    mappings:
    - type: from_intent
      intent: affirm
      value: true
      conditions:
      - active_loop: verify_form
        requested_slot: confirmed
    - type: from_intent
      intent: deny
      value: false
      conditions:
      - active_loop: verify_form
        requested_slot: confirmed
  note:
    type: text
    mappings:
    - type: from_text
      conditions:
      - active_loop: verify_form
        requested_slot: note
forms:
  verify_form:
    required_slots: [account, confirmed, note]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_ask_account: [{text: "Which account?"}]
  utter_ask_confirmed: [{text: "Shall I check {account}?"}]
  utter_ask_note: [{text: "Anything to note?"}]
  utter_balance: [{text: "The balance of {account} is 12 EUR."}]
  utter_chitchat: [{text: "I'm just a bot."}]
  utter_handoff: [{text: "A person will take it from here."}]
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: start the form
  steps:
  - intent: ask_balance
  - action: verify_form
  - active_loop: verify_form
- rule: submit the form
  condition:
  - active_loop: verify_form
  steps:
  - action: verify_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_balance
- rule: chitchat inside the form
  condition:
  - active_loop: verify_form
  steps:
  - intent: chitchat
  - action: utter_chitchat
  - action: verify_form
  - active_loop: verify_form
"""

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
- intent: ask_balance
  examples: |
    - what's my balance
    - how much money do I have
    - show me my balance
    - balance please
- intent: inform
  examples: |
    - my [savings](account) account
    - the [checking](account) one
    - [savings](account)
    - it's [checking](account)
- intent: affirm
  examples: |
    - yes
    - yes please
    - sure
    - correct
- intent: deny
  examples: |
    - no
    - no thanks
    - nope
    - not really
- intent: chitchat
  examples: |
    - are you a robot
    - how is the weather
    - tell me a joke
    - what's your name
"""


@dataclass
class Conversation:
    bot: Bot
    sender: str
    loop: asyncio.Runner
    """One event loop for the bot's whole life, as a server has: its action client lives in it."""

    def say(self, text: str) -> list[str]:
        replies = self.loop.run(self.bot.engine.handle(InboundMessage("rest", self.sender, text)))
        return [reply.text for reply in replies]

    def tracker(self) -> DialogueTracker:
        return DialogueTracker.replay(self.bot.project.domain, self.bot.conversations.events(self.sender))


def form_project(root: Path, *, validated: bool) -> Path:
    actions = "actions: [validate_verify_form]\n" if validated else ""
    write(root, "domain.yml", DOMAIN + actions)
    write(root, "data/rules.yml", RULES)
    write(root, "data/nlu.yml", NLU)
    write(root, "config.yml", 'version: "3.1"\nlanguage: en\n')
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = form_project(tmp_path_factory.mktemp("formbot"), validated=False)
    train(load_project(root), models_dir(root))
    return root


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    port = free_port()
    process = start_action_server(ACTIONS, port=port)
    yield f"http://127.0.0.1:{port}/webhook"
    stop(process)


@dataclass
class RunningBot:
    bot: Bot
    loop: asyncio.Runner

    def conversation(self, sender: str) -> Conversation:
        return Conversation(self.bot, sender, self.loop)


def open_bot(root: Path, tmp_path: Path, action_endpoint: str | None = None) -> Iterator[RunningBot]:
    bot = assemble(root, database_url=f"sqlite:///{tmp_path / 'forms.db'}", action_endpoint=action_endpoint)
    with asyncio.Runner() as loop:
        yield RunningBot(bot, loop)
        loop.run(bot.aclose())


@pytest.fixture
def bot(trained: Path, tmp_path: Path) -> Iterator[RunningBot]:
    yield from open_bot(trained, tmp_path)


def payload(intent: str, **entities: str) -> str:
    return f"/{intent}{json.dumps(entities) if entities else ''}"


def test_a_form_asks_each_slot_and_submits_without_an_action_server(bot: RunningBot) -> None:
    chat = bot.conversation("happy")
    assert chat.say(payload("ask_balance")) == ["Which account?"]
    assert chat.tracker().active_loop_name == "verify_form"
    assert chat.say(payload("inform", account="savings")) == ["Shall I check savings?"]
    assert chat.say(payload("affirm")) == ["Anything to note?"]
    # A from_text slot takes the message as it is, whatever the classifier makes of it.
    assert chat.say("please hurry, it's for rent") == ["The balance of savings is 12 EUR."]
    tracker = chat.tracker()
    assert tracker.active_loop_name is None
    assert (tracker.slots["account"], tracker.slots["confirmed"], tracker.slots["note"]) == (
        "savings",
        True,
        "please hurry, it's for rent",
    )


def test_an_interruption_is_answered_by_its_rule_and_the_form_asks_again(bot: RunningBot) -> None:
    chat = bot.conversation("interrupted")
    chat.say(payload("ask_balance"))
    assert chat.say(payload("chitchat")) == ["I'm just a bot.", "Which account?"]
    assert chat.tracker().active_loop_name == "verify_form"
    assert chat.say(payload("inform", account="checking")) == ["Shall I check checking?"]


def test_a_slot_mapping_applies_only_while_its_slot_is_asked(bot: RunningBot) -> None:
    chat = bot.conversation("conditions")
    chat.say(payload("ask_balance"))
    # "yes" answers nothing the form asks now (account): the form is rejected, and with no rule
    # for affirm inside the form, a person takes over rather than the bot saying nothing.
    assert chat.say(payload("affirm")) == ["A person will take it from here."]
    assert chat.tracker().slots["confirmed"] is None


def test_a_form_validation_action_on_the_action_server_checks_each_answer(
    tmp_path: Path, trained: Path, action_server: str
) -> None:
    root = form_project(tmp_path / "validated", validated=True)
    (root / "models").symlink_to(models_dir(trained), target_is_directory=True)
    for running in open_bot(root, tmp_path, action_server):
        chat = running.conversation("validated")
        chat.say(payload("ask_balance"))
        assert chat.say(payload("inform", account="pension")) == [
            "I can't find an account called pension.",
            "Which account?",
        ]
        assert chat.tracker().slots["account"] is None
        assert chat.say(payload("inform", account="Savings")) == ["Shall I check savings?"]
