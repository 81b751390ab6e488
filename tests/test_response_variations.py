"""Response variations are picked as Rasa picks them: for the channel and the slots first."""

from __future__ import annotations

import random
from pathlib import Path

from crowddesk.bot.project.domain import load_domain
from crowddesk.bot.project.responses import ResponseRenderer
from tests.test_project_loading import write

DOMAIN = """\
version: "3.1"
slots:
  tier:
    type: categorical
    values: [gold, basic]
    mappings:
    - type: custom
responses:
  utter_welcome:
  - text: "Welcome!"
  - text: "Welcome, Telegram user!"
    channel: telegram
  - text: "Welcome back, gold member!"
    condition:
    - type: slot
      name: tier
      value: gold
  - text: "Gold, on Telegram!"
    channel: telegram
    condition:
    - type: slot
      name: tier
      value: Gold
  utter_only_slack:
  - text: "Slack only"
    channel: slack
"""


def texts(renderer: ResponseRenderer, name: str, slots: dict[str, object], channel: str | None) -> set[str]:
    return {renderer.render(name, "c1", slots, channel=channel).text for _ in range(20)}


def test_the_channel_and_the_slots_choose_the_variation(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    renderer = ResponseRenderer(load_domain(tmp_path / "domain.yml"), rng=random.Random(1))
    assert texts(renderer, "utter_welcome", {"tier": "basic"}, "webchat") == {"Welcome!"}
    assert texts(renderer, "utter_welcome", {"tier": "basic"}, "telegram") == {"Welcome, Telegram user!"}
    assert texts(renderer, "utter_welcome", {"tier": "gold"}, "webchat") == {"Welcome back, gold member!"}
    # A condition on a string compares without case, as in Rasa.
    assert texts(renderer, "utter_welcome", {"tier": "GOLD"}, "telegram") == {"Gold, on Telegram!"}


def test_a_response_with_no_variation_for_the_channel_still_replies(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    renderer = ResponseRenderer(load_domain(tmp_path / "domain.yml"))
    assert texts(renderer, "utter_only_slack", {}, "telegram") == {"Slack only"}
