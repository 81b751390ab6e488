"""The results of conversation tests as `rasa test core` gives them: a summary, `story_report.json`
and `failed_test_stories.yml`, the failed stories in Rasa's test story format with every failing
step commented `# predicted: <what the bot did>`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crowddesk.bot.evaluation.story_run import LISTEN, LISTENING, StepFailure, StoryResult
from crowddesk.bot.project.story_steps import ActionStep, ActiveLoopStep, BotStep, SlotStep, Step, StepEntity, UserStep
from crowddesk.bot.project.yaml_files import split_source

STORY_REPORT = "story_report.json"
FAILED_STORIES = "failed_test_stories.yml"
NONE_FAILED = "# None of the test stories failed - all good!\n"


def summary_lines(results: Sequence[StoryResult]) -> list[str]:
    """The first failing step of every failed story, then the story and action totals."""
    lines = [f"FAILED {result.failure}" for result in results if result.failure]
    passed = sum(1 for result in results if result.failure is None)
    lines.append(f"{passed} of {len(results)} conversation tests passed")
    lines.append(f"{sum(r.correct_actions for r in results)} of {sum(r.actions for r in results)} actions correct")
    return lines


def story_report(results: Sequence[StoryResult]) -> dict[str, Any]:
    passed = sum(1 for result in results if result.failure is None)
    actions = sum(result.actions for result in results)
    correct = sum(result.correct_actions for result in results)
    return {
        "stories": {"total": len(results), "passed": passed, "failed": len(results) - passed},
        "actions": {"total": actions, "correct": correct, "accuracy": correct / actions if actions else None},
        "results": [
            {
                "story": result.story.name,
                "source": result.story.source,
                "passed": result.failure is None,
                "actions": result.actions,
                "correct_actions": result.correct_actions,
                "failures": [failure.as_dict() for failure in result.failures],
            }
            for result in results
        ],
    }


def write_story_report(out_dir: Path, results: Sequence[StoryResult]) -> list[Path]:
    """`out_dir/story_report.json` and `out_dir/failed_test_stories.yml`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report, failed = out_dir / STORY_REPORT, out_dir / FAILED_STORIES
    report.write_text(json.dumps(story_report(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    failed.write_text(failed_stories_yaml(results), encoding="utf-8")
    return [report, failed]


def failed_stories_yaml(results: Sequence[StoryResult]) -> str:
    stories = [_story_lines(result) for result in results if result.failures]
    if not stories:
        return NONE_FAILED
    return "\n".join(['version: "3.1"', "stories:", *(line for story in stories for line in story)]) + "\n"


def _story_lines(result: StoryResult) -> list[str]:
    """One failed story; the bot acting where the story waits for the customer is written as Rasa
    does, an `action_listen` step commented with the action that came instead."""
    steps = result.story.steps
    comments: dict[tuple[int, bool], list[str]] = {}
    for failure in result.failures:
        comments.setdefault((failure.index, failure.kind == LISTENING), []).append(_one_line(failure))
    name = f"{result.story.name} ({split_source(result.story.source)[0]})"
    lines = [f"- story: {_quoted(name)}", "  steps:"]
    for index in range(len(steps) + 1):
        if (index, True) in comments:
            lines.append(f"  - action: {LISTEN}" + _comment(comments[(index, True)]))
        if index == len(steps):
            break
        step, comment = steps[index], _comment(comments.get((index, False), []))
        if isinstance(step, SlotStep):
            if index == 0 or steps[index - 1].source != step.source or not isinstance(steps[index - 1], SlotStep):
                lines.append("  - slot_was_set:")
            lines.append(f"    - {step.name}" + ("" if step.any_value else f": {json.dumps(step.value)}") + comment)
        else:
            lines.extend(_step_lines(step, comment))
    return lines


def _step_lines(step: Step, comment: str) -> list[str]:
    if isinstance(step, UserStep) and step.text is not None:
        intent = [f"    intent: {step.intent}"] if step.intent else []
        return [f"  - user: {_quoted(step.text)}{comment}", *intent]
    if isinstance(step, UserStep):
        entities = ["    entities:", *(f"    - {_entity(entity)}" for entity in step.entities)] if step.entities else []
        return [f"  - intent: {step.intent}{comment}", *entities]
    if isinstance(step, ActionStep):
        return [f"  - action: {step.name}{comment}"]
    if isinstance(step, BotStep):
        return [f"  - bot: {_quoted(step.text)}{comment}"]
    if isinstance(step, ActiveLoopStep):
        return [f"  - active_loop: {step.name or 'null'}{comment}"]
    return []  # linear stories hold no checkpoints and no `or:` steps


def _entity(entity: StepEntity) -> str:
    """An intent step's entity in the shortest of Rasa's forms that keeps all of it."""
    if entity.value is None and entity.role is None and entity.group is None:
        return entity.entity
    if entity.role is None and entity.group is None:
        return f"{entity.entity}: {_quoted(entity.value)}"
    return json.dumps({key: value for key, value in entity._asdict().items() if value is not None}, ensure_ascii=False)


def _quoted(text: str | None) -> str:
    # A JSON string is a valid double-quoted YAML scalar, whatever the text holds.
    return json.dumps(text, ensure_ascii=False)


def _one_line(failure: StepFailure) -> str:
    return " ".join(failure.predicted.split())


def _comment(predictions: list[str]) -> str:
    return f"  # predicted: {'; '.join(predictions)}" if predictions else ""
