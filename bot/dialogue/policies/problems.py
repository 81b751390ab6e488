"""What `data validate` learns from training the dialogue policies: rules that contradict
another rule or a story (Rasa refuses to train them; CrowdDesk runs neither of two contradicting
rules in that situation)."""

from __future__ import annotations

from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.training_data import TrainingData
from crowddesk.bot.project.validation import Problem, problem_at


def rule_conflicts(domain: Domain, data: TrainingData) -> list[Problem]:
    policies = DialoguePolicies.train(domain, data.stories, data.rules)
    return [
        problem_at(
            conflict.rule.source,
            f"rules.{conflict.rule.name}",
            f"contradicts {conflict.other}: where it does {conflict.actions[1]!r}, this rule does "
            f"{conflict.actions[0]!r}",
        )
        for conflict in policies.rule_conflicts
    ]
