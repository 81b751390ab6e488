"""`crowddesk evaluate conversations --core`: test stories checked as `rasa test core` checks them.

The story's own events are replayed: its intents and entities as given (a user step with text
only is read by the model's NLU), its `slot_was_set` and `active_loop` steps applied as written.
Only the bot's actions are predicted, by the project's dialogue policies, each compared with the
story's and then replaced by it; where the story goes elsewhere than the active form, the form
is taken to have refused the message, as Rasa's test does. Nothing runs, so no action server is
needed, and a story that writes a form as `active_loop: form` then `active_loop: null` passes as
it does in Rasa. Where a story waits for the customer, the dialogue must listen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.dialogue.policies.training_events import step_events
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker, Event
from crowddesk.bot.evaluation.story_run import ACTION, LISTENING, StepFailure, StoryResult, step_numbers
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.story_steps import ActionStep, BotStep, StepEntity, UserStep
from crowddesk.bot.project.training_data import Story

ReadText = Callable[[str], tuple[str, str, tuple[StepEntity, ...]]]
"""NLU for a text-only user step: its intent, the text, and the entities found in it."""


def replay_stories(
    dialogue: DialoguePolicies, domain: Domain, stories: Sequence[Story], read_text: ReadText
) -> list[StoryResult]:
    return [_replay(dialogue, domain, story, read_text) for story in stories]


def _replay(dialogue: DialoguePolicies, domain: Domain, story: Story, read_text: ReadText) -> StoryResult:
    numbers = step_numbers(story.steps)
    events: list[Event] = [{"event": "action", "name": ACTION_LISTEN}]
    failures: list[StepFailure] = []
    actions = correct = 0

    def predicted() -> str:
        chosen = dialogue.predict(events)
        return "nothing" if chosen is None else chosen.action

    def fail(index: int, kind: str, expected: str, got: str) -> None:
        step = story.steps[index] if index < len(story.steps) else story.steps[-1]
        failures.append(
            StepFailure(story.name, numbers[min(index, len(numbers) - 1)], index, step.source, kind, expected, got, got)
        )

    for index, step in enumerate(story.steps):
        if isinstance(step, UserStep):
            if events[-1] != {"event": "action", "name": ACTION_LISTEN} and (got := predicted()) != ACTION_LISTEN:
                fail(index, LISTENING, "the customer's next message", f"action {got}")
            if step.intent is None and step.text is not None:
                step = UserStep(*read_text(step.text), source=step.source)
            events.extend(step_events(domain, step, events))
        elif isinstance(step, (ActionStep, BotStep)):
            actions += 1
            expected = step.name if isinstance(step, ActionStep) else step.text
            got = predicted()
            if got != expected and got == DialogueTracker.replay(domain, events).active_loop_name:
                # As rasa test core: the form might have refused the message; then the dialogue decides.
                events.append({"event": "action_execution_rejected", "name": got})
                got = predicted()
            if got == expected:
                correct += 1
            else:
                fail(index, ACTION, f"action {expected}", f"action {got}")
            events.extend(step_events(domain, step, events))
        else:  # slot_was_set and active_loop steps are facts of the story, applied as written
            events.extend(step_events(domain, step, events))
    if story.steps and (got := predicted()) != ACTION_LISTEN:
        fail(len(story.steps), LISTENING, "the story to end", f"action {got}")
    return StoryResult(story, tuple(failures), actions, correct)
