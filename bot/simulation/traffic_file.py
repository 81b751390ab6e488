"""The simulated traffic a project describes in `simulation.yml`: how many customers come, the
questions nobody taught the bot, the team's size. Repeat questions are not listed there: they are
the examples of the project's retrieval intents (`faq/<topic>` in data/nlu.yml), whose answers the
bot has.

    customers_per_weekday: 150   # optional, default 150
    new_question_share: 0.25     # optional, default 0.25
    agents: 4                    # optional, default 4
    new_questions:
      - can I open a joint account with my partner?
"""

from __future__ import annotations

from pathlib import Path

from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.yaml_files import (
    ProjectFileError,
    item_line,
    key_line,
    read_yaml,
    require_mapping,
    require_sequence,
    require_str,
)
from crowddesk.bot.simulation.operation import Traffic
from crowddesk.bot.simulation.traffic import Question

FILE_NAME = "simulation.yml"
KEYS = ("customers_per_weekday", "new_question_share", "agents", "new_questions")


def read_traffic(project: Project) -> tuple[Traffic, int]:
    """The project's simulated traffic and team size; ProjectFileError naming the file, line
    and key when `simulation.yml` is missing or wrong."""
    path = project.root / FILE_NAME
    if not path.exists():
        raise ProjectFileError(Path(FILE_NAME), None, None, "no such file: the simulation needs its traffic described")
    file = read_yaml(path, project.root)
    content = require_mapping(file, file.content, FILE_NAME, 1)
    for key in content:
        if key not in KEYS:
            raise file.error(key_line(content, key), str(key), f"unknown key; one of: {', '.join(KEYS)}")

    def number(key: str, default: float, low: float, high: float) -> float:
        value = content.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise file.error(key_line(content, key), key, f"expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    traffic_share = number("new_question_share", 0.25, 0, 1)
    listed = require_sequence(file, content.get("new_questions"), "new_questions", key_line(content, "new_questions"))
    new = [
        Question(require_str(file, text, f"new_questions[{i}]", item_line(listed, i))) for i, text in enumerate(listed)
    ]
    repeat = [Question(example.text, example.intent) for example in project.data.examples if "/" in example.intent]
    if not repeat:
        raise file.error(None, None, "the project has no retrieval intents (faq/<topic>) to draw repeat questions from")
    if not new and traffic_share > 0:
        line = key_line(content, "new_questions")
        raise file.error(line, "new_questions", "list at least one, or set new_question_share: 0")
    traffic = Traffic(
        per_weekday=number("customers_per_weekday", 150, 1, 100_000),
        repeat=repeat,
        new=new,
        new_share=traffic_share,
    )
    return traffic, int(number("agents", 4, 1, 1000))
