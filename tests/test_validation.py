"""`validate_project`: every kind of problem, each with its exact file, line and key."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from crowddesk.bot.project.validation import Problem, Severity, validate_project
from tests.test_project_loading import line_of, write

REPO_ROOT = Path(__file__).resolve().parents[1]

DOMAIN = dedent("""
    version: "3.1"
    intents:
      - greet:
          metadata: {title: Just saying hello}
      - inform:
          metadata: {title: My account number}
      - faq
    entities:
      - account
    slots:
      account:
        type: text
        mappings:
          - type: from_entity
            entity: account
    responses:
      utter_greet:
        - text: Hello!
    actions:
      - action_lookup
    forms:
      account_form:
        required_slots: [account]
    """)

NLU = dedent("""
    version: "3.1"
    nlu:
      - intent: greet
        examples: |
          - hi
          - hello
      - intent: inform
        examples: |
          - my account is [12345](account)
      - intent: faq/opening_hours
        examples: |
          - when are you open
          - opening hours
      - regex: account
        examples: |
          - \\d{5}
    """)

RESPONSES = dedent("""
    responses:
      utter_faq/opening_hours:
        - text: We are open 9 to 5.
    """)

RULES = dedent("""
    rules:
      - rule: greet
        steps:
          - intent: greet
          - action: utter_greet
      - rule: answer faqs with the retrieval action
        steps:
          - intent: faq
          - action: utter_faq
      - rule: look the account up
        condition:
          - active_loop: account_form
        steps:
          - intent: inform
          - slot_was_set:
              - account: "12345"
          - action: action_lookup
          - action: action_listen
    """)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A small valid project; each test breaks one thing in it."""
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/nlu.yml", NLU)
    write(tmp_path, "data/responses.yml", RESPONSES)
    write(tmp_path, "data/rules.yml", RULES)
    return tmp_path


def problem(path: Path, root: Path, needle: str, key: str, message: str, severity: Severity = "error") -> Problem:
    return Problem(str(path.relative_to(root)), line_of(path, needle), key, message, severity)


def test_valid_project_has_no_problems(project: Path) -> None:
    assert validate_project(project) == []


def test_every_broken_file_is_reported_not_just_the_first(project: Path) -> None:
    nlu = write(project, "data/nlu.yml", NLU + "  - intent: [oops\n")
    config = write(project, "config.yml", "pipeline:\n  - name: FancyClassifier\n")
    endpoints = write(project, "endpoints.yml", "action_endpoint:\n  url: ftp://actions\n")

    problems = validate_project(project)

    assert [(p.path, p.line, p.key) for p in problems] == [
        ("config.yml", line_of(config, "FancyClassifier"), "pipeline[0].name"),
        ("data/nlu.yml", line_of(nlu, "oops") + 1, ""),  # the parser notices at end of input
        ("endpoints.yml", line_of(endpoints, "ftp"), "action_endpoint.url"),
    ]
    assert problems[1].message.startswith("invalid YAML")
    assert all(p.severity == "error" for p in problems)


def test_broken_domain_does_not_flood_the_report(project: Path) -> None:
    domain = write(project, "domain.yml", DOMAIN.replace("  - faq\n", "  - faq\n  bad: [\n"))
    problems = validate_project(project)
    assert len(problems) == 1
    assert (problems[0].path, problems[0].severity) == ("domain.yml", "error")
    assert problems[0].line is not None and problems[0].line >= line_of(domain, "bad: [")


def test_unknown_intent_in_a_rule(project: Path) -> None:
    rules = write(project, "data/rules.yml", RULES.replace("intent: greet", "intent: greeting"))
    assert validate_project(project) == [
        problem(
            rules,
            project,
            "intent: greeting",
            "rules.greet",
            "unknown intent 'greeting' (not in the domain nor in the NLU data)",
        )
    ]


def test_retrieval_base_intent_is_known_from_its_examples(project: Path) -> None:
    domain = write(project, "domain.yml", DOMAIN.replace("  - faq\n", ""))
    nlu = project / "data/nlu.yml"
    # Only a warning about the missing declaration: the rule's `intent: faq` itself is fine.
    assert validate_project(project) == [
        problem(
            nlu,
            project,
            "when are you open",
            "nlu.faq",
            "intent 'faq' has examples but is not declared under `intents:` in the domain",
            "warning",
        )
    ]
    assert "faq" not in domain.read_text(encoding="utf-8")


def test_unknown_actions_and_responses_in_rules_and_stories(project: Path) -> None:
    stories = write(
        project,
        "data/stories.yml",
        """
        stories:
          - story: greet and look up
            steps:
              - intent: greet
              - action: utter_hello
              - action: action_lookup_account
              - action: account_form
              - active_loop: account_form
              - slot_was_set:
                  - balance: 10
              - active_loop: billing_form
              - active_loop: null
        """,
    )
    assert validate_project(project) == [
        problem(
            stories,
            project,
            "utter_hello",
            "stories.greet and look up",
            "no response named 'utter_hello' in the domain",
        ),
        problem(
            stories,
            project,
            "action_lookup_account",
            "stories.greet and look up",
            "action 'action_lookup_account' is not declared under `actions:` in the domain",
        ),
        Problem(
            "data/stories.yml",
            line_of(stories, "balance") - 1,
            "stories.greet and look up",
            "unknown slot 'balance'",
        ),
        problem(stories, project, "billing_form", "stories.greet and look up", "unknown form 'billing_form'"),
    ]


def test_retrieval_action_needs_a_retrieval_intent(project: Path) -> None:
    rules = write(project, "data/rules.yml", RULES.replace("action: utter_faq", "action: utter_chitchat"))
    assert validate_project(project) == [
        problem(
            rules,
            project,
            "utter_chitchat",
            "rules.answer faqs with the retrieval action",
            "no response named 'utter_chitchat' in the domain",
        )
    ]


def test_response_without_text_in_domain_and_data(project: Path) -> None:
    domain = write(
        project,
        "domain.yml",
        DOMAIN.replace("    - text: Hello!\n", "    - text: Hello!\n    - buttons: []\n"),
    )
    responses = write(project, "data/responses.yml", RESPONSES + "  utter_faq/empty:\n    - text: ''\n")
    write(
        project,
        "data/nlu.yml",
        NLU.replace("- opening hours", "- opening hours\n  - intent: faq/empty\n    examples: |\n      - empty"),
    )
    assert validate_project(project) == [
        problem(
            responses,
            project,
            "text: ''",
            "responses.utter_faq/empty",
            "response has no text (nor image or custom payload)",
        ),
        problem(
            domain,
            project,
            "- buttons: []",
            "responses.utter_greet",
            "response has no text (nor image or custom payload)",
        ),
    ]


def test_duplicate_example_under_two_intents_reports_both_lines(project: Path) -> None:
    nlu = write(project, "data/nlu.yml", NLU.replace("- hello", "- Opening   Hours"))
    greet_line, faq_line = line_of(nlu, "Opening   Hours"), line_of(nlu, "- opening hours")
    assert validate_project(project) == [
        Problem(
            "data/nlu.yml",
            greet_line,
            "nlu.greet",
            f"example 'Opening   Hours' is also an example of intent 'faq/opening_hours' (data/nlu.yml:{faq_line}); "
            "it is trained as an example of both, so such a message counts as ambiguous",
            "warning",
        ),
        Problem(
            "data/nlu.yml",
            faq_line,
            "nlu.faq/opening_hours",
            f"example 'opening hours' is also an example of intent 'greet' (data/nlu.yml:{greet_line}); "
            "it is trained as an example of both, so such a message counts as ambiguous",
            "warning",
        ),
    ]


def test_undeclared_intent_and_intent_without_examples_are_warnings(project: Path) -> None:
    domain = write(project, "domain.yml", DOMAIN.replace("  - faq\n", "  - faq\n  - goodbye\n  - nlu_fallback\n"))
    nlu = write(project, "data/nlu.yml", NLU + "  - intent: thanks\n    examples: |\n      - thank you\n")
    assert validate_project(project) == [
        problem(
            nlu,
            project,
            "thank you",
            "nlu.thanks",
            "intent 'thanks' has examples but is not declared under `intents:` in the domain",
            "warning",
        ),
        problem(
            domain,
            project,
            "- goodbye",
            "intents.goodbye",
            "intent 'goodbye' is declared but has no training examples",
            "warning",
        ),
    ]


def test_an_intent_a_clarification_can_offer_needs_a_title(project: Path) -> None:
    domain = write(
        project, "domain.yml", DOMAIN.replace("  - greet:\n      metadata: {title: Just saying hello}\n", "  - greet\n")
    )
    assert validate_project(project) == [
        problem(
            domain,
            project,
            "- greet",
            "intents.greet",
            "a clarifying button would show the raw name 'greet': add `metadata: {title: ...}` "
            "to the intent (or to its response 'utter_greet')",
            "warning",
        ),
    ]
    # The response's metadata title is enough (FAQ answers are titled that way too).
    write(
        project,
        "domain.yml",
        DOMAIN.replace("  - greet:\n      metadata: {title: Just saying hello}\n", "  - greet\n").replace(
            "    - text: Hello!\n", "    - text: Hello!\n      metadata: {title: Say hello}\n"
        ),
    )
    assert validate_project(project) == []


def test_retrieval_intent_without_its_response(project: Path) -> None:
    nlu = write(project, "data/nlu.yml", NLU + "  - intent: faq/fees\n    examples: |\n      - any fees?\n")
    assert validate_project(project) == [
        problem(
            nlu,
            project,
            "any fees?",
            "nlu.faq/fees",
            "retrieval intent 'faq/fees' has no response 'utter_faq/fees'",
        )
    ]


def test_annotated_entity_not_in_the_domain_is_a_warning(project: Path) -> None:
    nlu = write(project, "data/nlu.yml", NLU.replace("- hello", "- hello from [Berlin](city)"))
    assert validate_project(project) == [
        problem(
            nlu,
            project,
            "Berlin",
            "nlu.greet",
            "entity 'city' is annotated but not declared under `entities:` in the domain; "
            "it is still learnt from the examples, but no slot, rule or story can use it",
            "warning",
        )
    ]


def test_slot_mapping_to_unknown_entity(project: Path) -> None:
    domain = write(project, "domain.yml", DOMAIN.replace("entity: account", "entity: acount"))
    assert validate_project(project) == [
        problem(
            domain,
            project,
            "- type: from_entity",
            "slots.account.mappings[0]",
            "entity 'acount' is not declared under `entities:` in the domain",
        )
    ]


def test_invalid_regex(project: Path) -> None:
    nlu = write(project, "data/nlu.yml", NLU.replace("\\d{5}", "\\d{5("))
    [reported] = validate_project(project)
    assert (reported.path, reported.line, reported.key, reported.severity) == (
        "data/nlu.yml",
        line_of(nlu, "d{5("),
        "regex.account",
        "error",
    )
    assert reported.message.startswith("invalid regular expression '\\\\d{5(': ")


def test_missing_secret_in_endpoints_is_only_a_warning(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWDDESK_TEST_DB_PASSWORD", raising=False)
    endpoints = write(
        project,
        "endpoints.yml",
        """
        tracker_store:
          type: sql
          dialect: postgresql
          db: crowddesk
          password: ${CROWDDESK_TEST_DB_PASSWORD}
        """,
    )
    assert validate_project(project) == [
        problem(
            endpoints,
            project,
            "password",
            "tracker_store.password",
            "environment variable 'CROWDDESK_TEST_DB_PASSWORD' is not set",
            "warning",
        )
    ]


def test_problems_are_sorted_by_path_and_line(project: Path) -> None:
    write(
        project,
        "data/rules.yml",
        RULES.replace("utter_greet", "utter_hi").replace("action_lookup", "action_find"),
    )
    write(project, "domain.yml", DOMAIN.replace("entity: account", "entity: acount"))
    problems = validate_project(project)
    assert len(problems) == 3
    assert problems == sorted(problems, key=lambda p: (p.path, p.line or 0))
    assert [p.path for p in problems] == ["data/rules.yml", "data/rules.yml", "domain.yml"]


def test_demo_project_has_no_errors() -> None:
    errors = [str(p) for p in validate_project(REPO_ROOT) if p.severity == "error"]
    assert errors == []
