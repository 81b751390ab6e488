"""Stories as straight lines, as Rasa's StoryGraph gives them to its policies: every `or:` expanded
into one story per alternative, and stories joined wherever one ends in a checkpoint another
starts with. No augmentation (random story concatenation) is done."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from crowddesk.bot.project.story_steps import CheckpointStep, OrStep, Step
from crowddesk.bot.project.training_data import Story
from crowddesk.bot.project.yaml_files import FileWarning, split_source

JOINED_NAME_SEPARATOR = " > "


class LinearStories(NamedTuple):
    """The expanded stories, and warnings about checkpoints that join nothing."""

    stories: list[Story]
    warnings: list[FileWarning]


@dataclass(frozen=True, eq=False)
class _Segment:
    """A stretch of a story between checkpoints: it may follow any of `starts` (none: the
    conversation's start) and continues with every segment starting with one of `ends`.
    Checkpoint slot conditions are not applied when joining."""

    story: Story
    starts: tuple[CheckpointStep, ...]
    steps: tuple[Step, ...]
    ends: tuple[CheckpointStep, ...]


def linear_stories(stories: Iterable[Story]) -> LinearStories:
    """Every path through the stories from the conversation's start; a path that would enter
    a segment it already went through stops there (Rasa unrolls such cycles a few times)."""
    segments = [segment for story in stories for option in _without_or(story) for segment in _segments(option)]
    following: dict[str, list[_Segment]] = {}
    for segment in segments:
        for start in segment.starts:
            following.setdefault(start.name, []).append(segment)
    warnings = _unjoined_checkpoints(segments, following)
    paths: list[Story] = []
    for segment in segments:
        if not segment.starts:
            paths.extend(_paths(segment, following, (), ()))
    return LinearStories(paths, list(dict.fromkeys(warnings)))


def without_alternatives(steps: tuple[Step, ...]) -> list[tuple[Step, ...]]:
    """One sequence of steps per combination of `or:` alternatives (of a story or a rule)."""
    choices = [step.alternatives if isinstance(step, OrStep) else (step,) for step in steps]
    return [tuple(combination) for combination in itertools.product(*choices)]


def _without_or(story: Story) -> list[Story]:
    """One story per combination of `or:` alternatives (the story itself when it has none)."""
    options = without_alternatives(story.steps)
    return [story] if len(options) == 1 else [Story(story.name, steps, story.source) for steps in options]


def _segments(story: Story) -> list[_Segment]:
    """Split a story at its checkpoints: a checkpoint inside a story ends one segment and starts the next."""
    result: list[_Segment] = []
    starts: list[CheckpointStep] = []
    steps: list[Step] = []
    ends: list[CheckpointStep] = []
    for step in story.steps:
        if isinstance(step, CheckpointStep):
            (ends if steps else starts).append(step)
            continue
        if ends:
            result.append(_Segment(story, tuple(starts), tuple(steps), tuple(ends)))
            starts, steps, ends = ends, [], []
        steps.append(step)
    result.append(_Segment(story, tuple(starts), tuple(steps), tuple(ends)))
    return result


def _paths(
    segment: _Segment, following: dict[str, list[_Segment]], steps: tuple[Step, ...], seen: tuple[_Segment, ...]
) -> list[Story]:
    steps = (*steps, *segment.steps)
    seen = (*seen, segment)
    nexts = [after for end in segment.ends for after in following.get(end.name, ()) if after not in seen]
    if not nexts:
        return [_story(seen, steps)]
    return [path for after in nexts for path in _paths(after, following, steps, seen)]


def _story(segments: Sequence[_Segment], steps: tuple[Step, ...]) -> Story:
    names = dict.fromkeys(segment.story.name for segment in segments)
    return Story(JOINED_NAME_SEPARATOR.join(names), steps, segments[0].story.source)


def _unjoined_checkpoints(segments: list[_Segment], following: dict[str, list[_Segment]]) -> list[FileWarning]:
    ended = {end.name for segment in segments for end in segment.ends}
    warnings = [
        _warning(end, f"checkpoint {end.name!r} is used but no story starts with it; the story ends here")
        for segment in segments
        for end in segment.ends
        if end.name not in following
    ]
    warnings.extend(
        _warning(start, f"checkpoint {start.name!r} is never reached: no story ends with it")
        for segment in segments
        for start in segment.starts
        if start.name not in ended
    )
    return warnings


def _warning(step: CheckpointStep, message: str) -> FileWarning:
    path, line = split_source(step.source)
    return FileWarning(Path(path), line, "stories", message)
