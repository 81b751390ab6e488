"""`crowddesk validate`: every problem in a project at once, each pointing at file, line and key."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

from crowddesk.bot.project.config import PolicySettings, load_config, never_answered_intents
from crowddesk.bot.project.credentials import CREDENTIALS_FILE, build_channels, load_credentials
from crowddesk.bot.project.domain import (
    FEEDBACK_INTENT,
    RETRIEVAL_SEPARATOR,
    Domain,
    Response,
    domain_files,
    load_domain_file,
    merge_domains,
    with_implicit_slots,
    with_responses,
)
from crowddesk.bot.project.endpoints import MissingEnvironmentVariable, load_endpoints
from crowddesk.bot.project.loading import CONFIG_FILE, DATA_DIRECTORY, ENDPOINTS_FILE, locate_domain
from crowddesk.bot.project.story_graph import linear_stories
from crowddesk.bot.project.story_steps import (
    ActionStep,
    ActiveLoopStep,
    CheckpointStep,
    OrStep,
    SlotStep,
    Step,
    UserStep,
)
from crowddesk.bot.project.training_data import (
    Rule,
    Story,
    TrainingData,
    find_training_files,
    load_training_file,
    merge_training_data,
)
from crowddesk.bot.project.wiring import handled_intents
from crowddesk.bot.project.yaml_files import FileWarning, ProjectFileError, split_source

Severity = Literal["error", "warning"]
T = TypeVar("T")

# Actions Rasa (and so CrowdDesk) provides without a declaration in the domain.
BUILTIN_ACTIONS = frozenset(
    {
        "action_listen",
        "action_restart",
        "action_session_start",
        "action_default_fallback",
        "action_deactivate_loop",
        "action_revert_fallback_events",
        "action_default_ask_affirmation",
        "action_default_ask_rephrase",
        "action_two_stage_fallback",
        "action_back",
        "action_unlikely_intent",
        "action_extract_slots",
    }
)
# Intents triggered by the system or by payloads such as "/restart", so they need no examples.
# kb_feedback comes only from the buttons on knowledge-base answers and is read without NLU.
INTENTS_WITHOUT_EXAMPLES = frozenset({"restart", "back", "session_start", "nlu_fallback", FEEDBACK_INTENT})
DEFAULT_INTENTS = INTENTS_WITHOUT_EXAMPLES | {"out_of_scope"}
# Loops Rasa runs without a form in the domain (`active_loop: action_two_stage_fallback`).
BUILTIN_LOOPS = frozenset({"action_two_stage_fallback"})
# `crowddesk train` refuses data with fewer intents than this (the classifier needs two classes).
MIN_TRAINED_INTENTS = 2


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    key: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        location = self.path if self.line is None else f"{self.path}:{self.line}"
        key = f"{self.key}: " if self.key else ""
        return f"{location}: {self.severity}: {key}{self.message}"


def problem_at(source: str, key: str, message: str, severity: Severity = "error") -> Problem:
    path, line = split_source(source)
    return Problem(path, line, key, message, severity)


# A check of the loaded project that needs more than its files, e.g. the dialogue's rule conflicts.
ProjectCheck = Callable[[Domain, TrainingData], Iterable[Problem]]


def validate_project(root: Path, *, checks: Sequence[ProjectCheck] = ()) -> list[Problem]:
    """Load every file on its own, so one broken file does not hide the others' problems.
    `checks` run last, on the merged domain and data, when nothing else is an error."""
    problems: list[Problem] = []
    domain = _load_domain(root, problems)
    data_complete, data = _load_data(root, problems)
    config = _attempt(problems, lambda: load_config(root / CONFIG_FILE, root=root))
    _attempt(problems, lambda: load_endpoints(root / ENDPOINTS_FILE, root=root))
    credentials = _attempt(problems, lambda: load_credentials(root / CREDENTIALS_FILE, root=root))
    if credentials is not None:
        for name, block in credentials.blocks.items():
            # Each channel on its own, as `run` will build it, so one bad channel hides no other.
            _attempt(problems, partial(build_channels, replace(credentials, blocks={name: block})))
    warnings = [
        *(config.warnings if config is not None else []),
        *(domain.warnings if domain is not None else []),
        *data.warnings,
        *(credentials.warnings if credentials is not None else ()),
        *linear_stories(data.stories).warnings,
    ]
    problems.extend(map(_from_warning, dict.fromkeys(warnings)))
    problems.extend(_invalid_regexes(data))
    problems.extend(_duplicate_examples(data))
    problems.extend(_responses_without_content(data.responses))
    if data_complete:
        problems.extend(_too_few_intents(data))
    if domain is not None:
        problems.extend(_responses_without_content(domain.responses))
        problems.extend(_slot_mappings_to_unknown_entities(domain))
        problems.extend(_slot_mapping_conditions(domain))
        if data_complete:
            merged = _attempt(problems, lambda: with_responses(domain, data.responses, data.sources))
            problems.extend(_cross_checks(merged or domain, data))
            if config is not None:
                problems.extend(_untitled_clarify_options(domain, data, config.policy))
            if not any(problem.severity == "error" for problem in problems):
                for check in checks:
                    problems.extend(check(merged or domain, data))
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.key, p.message))


def _attempt(problems: list[Problem], load: Callable[[], T]) -> T | None:
    try:
        return load()
    except MissingEnvironmentVariable as error:
        # Validation often runs where production secrets are absent (CI, a laptop).
        problems.append(_from_error(error, "warning"))
    except ProjectFileError as error:
        problems.append(_from_error(error, "error"))
    return None


def _from_error(error: ProjectFileError, severity: Severity) -> Problem:
    return Problem(str(error.path), error.line, error.key or "", error.message, severity)


def _from_warning(warning: FileWarning) -> Problem:
    return Problem(str(warning.path), warning.line, warning.key or "", warning.message, "warning")


def _load_domain(root: Path, problems: list[Problem]) -> Domain | None:
    """The merged domain, or None when any domain file is broken (checks against it would be noise)."""
    location = _attempt(problems, lambda: locate_domain(root))
    if location is None:
        return None
    merged = merge_domains([], location)
    complete = True
    for path in domain_files(location):
        part = _attempt(problems, partial(load_domain_file, path, root=root))
        combined = None if part is None else _attempt(problems, partial(merge_domains, [merged, part], location))
        if combined is None:
            complete = False
        else:
            merged = combined
    return with_implicit_slots(merged) if complete else None


def _load_data(root: Path, problems: list[Problem]) -> tuple[bool, TrainingData]:
    """All data files that load (merged), and whether that was all of them."""
    merged = TrainingData()
    complete = True
    for path in find_training_files(root / DATA_DIRECTORY):
        part = _attempt(problems, partial(load_training_file, path, root=root))
        combined = None if part is None else _attempt(problems, partial(merge_training_data, [merged, part]))
        if combined is None:
            complete = False
        else:
            merged = combined
    return complete, merged


def _invalid_regexes(data: TrainingData) -> Iterable[Problem]:
    for regex in data.regexes:
        try:
            re.compile(regex.pattern)
        except re.error as error:
            yield problem_at(
                regex.source,
                f"regex.{regex.name}",
                f"invalid regular expression {regex.pattern!r}: {error}",
            )


def _duplicate_examples(data: TrainingData) -> Iterable[Problem]:
    by_text = defaultdict(list)
    for example in data.examples:
        by_text[" ".join(example.text.lower().split())].append(example)
    for examples in by_text.values():
        for example in examples:
            other = next((o for o in examples if o.intent != example.intent), None)
            if other is not None:
                # Kept under both intents: the classifier then learns the text is ambiguous and
                # answers it with low confidence (clarify or hand off) instead of guessing one.
                yield problem_at(
                    example.source,
                    f"nlu.{example.intent}",
                    f"example {example.text!r} is also an example of intent {other.intent!r} ({other.source}); "
                    "it is trained as an example of both, so such a message counts as ambiguous",
                    "warning",
                )


def _too_few_intents(data: TrainingData) -> Iterable[Problem]:
    intents = data.intents()
    if len(intents) < MIN_TRAINED_INTENTS:
        yield Problem(
            DATA_DIRECTORY,
            None,
            "nlu",
            f"examples for {len(intents)} intent(s), fewer than {MIN_TRAINED_INTENTS}: `crowddesk train` builds "
            "a model without an intent classifier (as Rasa trains a core-only model), which understands "
            "buttons and /intent messages only and hands any other text to a person",
            "warning",
        )


def _responses_without_content(responses: dict[str, list[Response]]) -> Iterable[Problem]:
    for name, variations in responses.items():
        for variation in variations:
            if not variation.has_content():
                yield problem_at(
                    variation.source,
                    f"responses.{name}",
                    "response has no text (nor image or custom payload)",
                )


def _slot_mappings_to_unknown_entities(domain: Domain) -> Iterable[Problem]:
    for slot in domain.slots.values():
        for index, mapping in enumerate(slot.mappings):
            if mapping.entity is not None and mapping.entity not in domain.entities:
                yield problem_at(
                    mapping.source,
                    f"slots.{slot.name}.mappings[{index}]",
                    f"entity {mapping.entity!r} is not declared under `entities:` in the domain",
                )


def _slot_mapping_conditions(domain: Domain) -> Iterable[Problem]:
    for slot in domain.slots.values():
        for index, mapping in enumerate(slot.mappings):
            for condition in mapping.conditions or []:
                loop, requested = condition.get("active_loop"), condition.get("requested_slot")
                message = None
                if loop is not None and loop not in domain.forms:
                    message = f"condition active_loop {loop!r} is not a form in the domain"
                elif requested is not None and requested not in domain.slots:
                    message = f"condition requested_slot {requested!r} is not a slot in the domain"
                if message:
                    yield problem_at(mapping.source, f"slots.{slot.name}.mappings[{index}]", message)


def _cross_checks(domain: Domain, data: TrainingData) -> Iterable[Problem]:
    """Checks between the domain and the training data (both complete)."""
    first_example: dict[str, str] = {}
    for example in data.examples:
        first_example.setdefault(example.intent, example.source)
        first_example.setdefault(_base(example.intent), example.source)
        for span in example.entities:
            if span.entity not in domain.entities:
                yield problem_at(
                    example.source,
                    f"nlu.{example.intent}",
                    f"entity {span.entity!r} is annotated but not declared under `entities:` in the domain; "
                    "it is still learnt from the examples, but no slot, rule or story can use it",
                    "warning",
                )
    for intent in data.intents():
        if RETRIEVAL_SEPARATOR in intent and f"utter_{intent}" not in domain.responses:
            yield problem_at(
                first_example[intent],
                f"nlu.{intent}",
                f"retrieval intent {intent!r} has no response 'utter_{intent}'",
            )
    for base in dict.fromkeys(_base(intent) for intent in data.intents()):
        if base not in domain.intents:
            yield problem_at(
                first_example[base],
                f"nlu.{base}",
                f"intent {base!r} has examples but is not declared under `intents:` in the domain",
                "warning",
            )
    for intent in domain.intents:
        if intent not in first_example and intent not in INTENTS_WITHOUT_EXAMPLES:
            yield problem_at(
                domain.sources[f"intents.{intent}"],
                f"intents.{intent}",
                f"intent {intent!r} is declared but has no training examples",
                "warning",
            )
    dialogues: list[Rule | Story] = [*data.rules, *data.stories]
    for dialogue in dialogues:
        yield from _dialogue_steps(domain, data, dialogue)


def _untitled_clarify_options(domain: Domain, data: TrainingData, policy: PolicySettings) -> Iterable[Problem]:
    """Intents a clarifying question can offer need a title a customer understands."""
    never_offered = never_answered_intents(policy)
    # Retrieval intents are offered as their answers, titled by the responses' metadata.
    retrieval_bases = {*domain.retrieval_intents(), *(_base(i) for i in data.intents() if RETRIEVAL_SEPARATOR in i)}
    for intent in handled_intents([*data.rules, *data.stories]):
        if intent in never_offered or intent in retrieval_bases or intent not in domain.intents:
            continue
        if domain.intent_title(intent) is None:
            yield problem_at(
                domain.sources[f"intents.{intent}"],
                f"intents.{intent}",
                f"a clarifying button would show the raw name {intent!r}: add "
                f"`metadata: {{title: ...}}` to the intent (or to its response 'utter_{intent}')",
                "warning",
            )


def _dialogue_steps(domain: Domain, data: TrainingData, dialogue: Rule | Story) -> Iterable[Problem]:
    kind = "rules" if isinstance(dialogue, Rule) else "stories"
    key = f"{kind}.{dialogue.name}"
    steps = [*dialogue.condition, *dialogue.steps] if isinstance(dialogue, Rule) else list(dialogue.steps)
    intents = {*domain.intents, *DEFAULT_INTENTS, *data.intents(), *map(_base, data.intents())}
    retrieval_bases = {
        *domain.retrieval_intents(),
        *(_base(i) for i in data.intents() if RETRIEVAL_SEPARATOR in i),
    }
    for step in _with_nested(steps):
        message = _unknown_in_step(domain, intents, retrieval_bases, step)
        if message:
            yield problem_at(step.source, key, message)


def _with_nested(steps: Iterable[Step]) -> Iterable[Step]:
    """Every step, with the alternatives of `or:` and the slot conditions of checkpoints."""
    for step in steps:
        yield step
        if isinstance(step, OrStep):
            yield from step.alternatives
        elif isinstance(step, CheckpointStep):
            yield from step.slots


def _unknown_in_step(domain: Domain, intents: set[str], retrieval_bases: set[str], step: Step) -> str | None:
    if isinstance(step, UserStep) and step.intent is not None and step.intent not in intents:
        return f"unknown intent {step.intent!r} (not in the domain nor in the NLU data)"
    if isinstance(step, ActionStep):
        return _unknown_action(domain, retrieval_bases, step.name)
    if isinstance(step, SlotStep) and step.name not in domain.slots:
        return f"unknown slot {step.name!r}"
    if isinstance(step, ActiveLoopStep) and step.name not in (None, *domain.forms, *BUILTIN_LOOPS):
        return f"unknown form {step.name!r}"
    return None


def _unknown_action(domain: Domain, retrieval_bases: set[str], action: str) -> str | None:
    if action.startswith("utter_"):
        if action in domain.responses or action.removeprefix("utter_") in retrieval_bases:
            return None
        return f"no response named {action!r} in the domain"
    if action in domain.actions or action in domain.forms or action in BUILTIN_ACTIONS:
        return None
    return f"action {action!r} is not declared under `actions:` in the domain"


def _base(intent: str) -> str:
    return intent.split(RETRIEVAL_SEPARATOR, 1)[0]
