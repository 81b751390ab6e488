"""Loading a bot project written in Rasa 3.x formats: every format feature, and precise errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from crowddesk.bot.project.config import (
    ClassifierSettings,
    EncoderSettings,
    PolicySettings,
    ProjectConfig,
    RetrieverSettings,
    load_config,
)
from crowddesk.bot.project.domain import Button, SessionConfig, load_domain
from crowddesk.bot.project.endpoints import (
    ACTION_ENDPOINT_ENV,
    DATABASE_URL_ENV,
    REDIS_URL_ENV,
    Endpoints,
    LockStore,
    MissingEnvironmentVariable,
    load_endpoints,
)
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.story_steps import ActionStep, ActiveLoopStep, SlotStep, StepEntity, UserStep
from crowddesk.bot.project.training_data import RegexPattern, load_training_data
from crowddesk.bot.project.yaml_files import ProjectFileError, read_yaml
from crowddesk.nlu.types import EntitySpan


def write(root: Path, relative: str, text: str) -> Path:
    """Write a dedented project file under `root` and return its path."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """1-based line of the only line of `path` containing `needle`."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    if len(hits) != 1:
        raise ValueError(f"{needle!r} occurs on lines {hits} of {path}, expected exactly one")
    return hits[0]


# --- YAML files ---------------------------------------------------------------------------------


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "domain.yml",
        """
        intents:
          - greet
        responses: [utter_greet
        actions: []
        """,
    )
    with pytest.raises(ProjectFileError) as raised:
        read_yaml(path, tmp_path)
    assert raised.value.path == Path("domain.yml")
    assert raised.value.line == line_of(path, "actions")
    assert str(raised.value).startswith(f"domain.yml:{line_of(path, 'actions')}: invalid YAML")


def test_duplicate_keys_are_rejected_at_the_second_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "config.yml",
        """
        language: en
        recipe: default.v1
        language: de
        """,
    )
    with pytest.raises(ProjectFileError) as raised:
        read_yaml(path, tmp_path)
    assert raised.value.line == line_of(path, "language: de")
    assert "duplicate key" in raised.value.message


def test_error_message_format() -> None:
    error = ProjectFileError(Path("domain.yml"), 12, "responses.utter_greet", "response has no text")
    assert str(error) == "domain.yml:12: responses.utter_greet: response has no text"
    assert str(ProjectFileError(Path("data/x.yml"), None, None, "cannot read")) == "data/x.yml: cannot read"


# --- domain -------------------------------------------------------------------------------------

DOMAIN = """
    version: "3.1"
    intents:
      - greet
      - order_status:
          use_entities: [order_id]
      - faq
    entities:
      - order_id
      - plan
    slots:
      order_id:
        type: text
        influence_conversation: false
        mappings:
          - type: from_entity
            entity: order_id
      plan:
        type: categorical
        values: [free, premium]
        initial_value: free
        mappings:
          - type: from_entity
            entity: plan
            conditions:
              - active_loop: upgrade_form
      wants_agent:
        type: bool
        mappings:
          - type: from_intent
            intent: [human_handoff]
            value: true
      notes:
        type: any
        mappings:
          - type: custom
            action: action_take_notes
    responses:
      utter_greet:
        - text: "Hi {name}!"
          buttons:
            - title: Track an order
              payload: /order_status
          condition:
            - type: slot
              name: plan
              value: premium
        - text: Hello!
          image: https://example.org/wave.png
      utter_card:
        - custom:
            blocks: [{type: card}]
      utter_faq/opening_hours:
        - text: We are open 9 to 5.
    actions:
      - action_take_notes
      - action_check_order:
          send_domain: true
    forms:
      upgrade_form:
        required_slots: [plan]
    session_config:
      session_expiration_time: 30
      carry_over_slots_to_new_session: false
    """


def test_domain_loads_every_section(tmp_path: Path) -> None:
    domain = load_domain(write(tmp_path, "domain.yml", DOMAIN), root=tmp_path)

    assert domain.intents == ["greet", "order_status", "faq"]
    assert domain.entities == ["order_id", "plan"]
    assert domain.actions == ["action_take_notes", "action_check_order"]
    assert domain.forms == {"upgrade_form": {"required_slots": ["plan"]}}
    assert domain.session_config == SessionConfig(30, False)

    plan = domain.slots["plan"]
    assert (plan.type, plan.values, plan.initial_value, plan.influence_conversation) == (
        "categorical",
        ["free", "premium"],
        "free",
        True,
    )
    assert plan.mappings[0].entity == "plan"
    assert plan.mappings[0].conditions == [{"active_loop": "upgrade_form"}]
    assert domain.slots["order_id"].influence_conversation is False
    assert domain.slots["wants_agent"].mappings[0].intent == ["human_handoff"]
    assert domain.slots["wants_agent"].mappings[0].value is True
    assert domain.slots["notes"].influence_conversation is False  # `any` slots never influence
    assert domain.slots["notes"].mappings[0].action == "action_take_notes"

    first, second = domain.responses["utter_greet"]
    assert first.text == "Hi {name}!"
    assert first.buttons == [Button("Track an order", "/order_status")]
    assert first.condition == [{"type": "slot", "name": "plan", "value": "premium"}]
    assert second.image == "https://example.org/wave.png"
    assert domain.responses["utter_card"][0].custom == {"blocks": [{"type": "card"}]}
    assert domain.responses["utter_card"][0].text == ""


def test_domain_knows_retrieval_intents_and_response_names(tmp_path: Path) -> None:
    domain = load_domain(write(tmp_path, "domain.yml", DOMAIN), root=tmp_path)
    assert domain.retrieval_intents() == ["faq"]
    assert domain.response_names() == ["utter_greet", "utter_card", "utter_faq/opening_hours"]


def test_domain_as_rasa_dict_is_the_action_server_shape(tmp_path: Path) -> None:
    rasa = load_domain(write(tmp_path, "domain.yml", DOMAIN), root=tmp_path).as_rasa_dict()

    assert json.loads(json.dumps(rasa)) == rasa  # the action server receives it as JSON
    assert set(rasa) == {
        "intents",
        "entities",
        "slots",
        "responses",
        "actions",
        "forms",
        "session_config",
    }
    assert rasa["slots"]["order_id"] == {
        "type": "text",
        "initial_value": None,
        "influence_conversation": False,
        "mappings": [{"type": "from_entity", "entity": "order_id"}],
    }
    assert rasa["slots"]["plan"]["values"] == ["free", "premium"]
    assert rasa["responses"]["utter_greet"][0]["buttons"] == [{"title": "Track an order", "payload": "/order_status"}]
    assert rasa["responses"]["utter_faq/opening_hours"] == [{"text": "We are open 9 to 5."}]
    assert rasa["session_config"] == {
        "session_expiration_time": 30.0,
        "carry_over_slots_to_new_session": False,
    }


def test_domain_directory_is_merged(tmp_path: Path) -> None:
    write(
        tmp_path,
        "domain/core.yml",
        """
        intents: [greet, goodbye]
        responses:
          utter_greet:
            - text: Hi
        session_config:
          session_expiration_time: 5
        """,
    )
    write(
        tmp_path,
        "domain/faq/faq.yml",
        """
        intents: [greet, faq]
        responses:
          utter_faq/fees:
            - text: No fees.
        """,
    )
    domain = load_domain(tmp_path / "domain", root=tmp_path)
    assert domain.intents == ["greet", "goodbye", "faq"]
    assert domain.response_names() == ["utter_greet", "utter_faq/fees"]
    assert domain.session_config.session_expiration_time == 5
    assert domain.sources["responses.utter_faq/fees"] == "domain/faq/faq.yml:3"


def test_response_defined_in_two_domain_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, "domain/a.yml", "responses:\n  utter_greet:\n    - text: Hi\n")
    write(tmp_path, "domain/b.yml", "intents: [greet]\nresponses:\n  utter_greet:\n    - text: Hello\n")
    with pytest.raises(ProjectFileError) as raised:
        load_domain(tmp_path / "domain", root=tmp_path)
    assert str(raised.value) == "domain/b.yml:3: responses.utter_greet: already defined at domain/a.yml:2"


def test_domain_without_session_config_uses_rasa_defaults(tmp_path: Path) -> None:
    domain = load_domain(write(tmp_path, "domain.yml", "intents: [greet]\n"))
    assert domain.session_config == SessionConfig(session_expiration_time=60, carry_over_slots_to_new_session=True)


@pytest.mark.parametrize(
    ("text", "needle", "key", "message"),
    [
        ("intents: [greet]\nintent: [bye]\n", "intent: [bye]", "intent", "unknown key"),
        (
            "slots:\n  age:\n    type: number\n    mappings: []\n",
            "type: number",
            "slots.age.type",
            "unknown slot type 'number'",
        ),
        (
            "slots:\n  age:\n    type: text\n    mappings:\n      - type: from_entity\n",
            "- type: from_entity",
            "slots.age.mappings[0].entity",
            "needs an entity",
        ),
        ("slots:\n  age:\n    type: text\n", "age:", "slots.age.mappings", "slot has no mappings"),
        (
            "responses:\n  utter_x:\n    - text: hi\n      buttons:\n        - title: Go\n",
            "- title: Go",
            "responses.utter_x[0].buttons[0].payload",
            "expected a non-empty string",
        ),
        (
            "intents:\n  - greet:\n      metadata:\n        title: [Hello]\n",
            "title:",
            "intents.greet.metadata.title",
            "expected a non-empty string",
        ),
    ],
)
def test_domain_errors_point_at_the_bad_key(tmp_path: Path, text: str, needle: str, key: str, message: str) -> None:
    path = write(tmp_path, "domain.yml", text)
    with pytest.raises(ProjectFileError) as raised:
        load_domain(path, root=tmp_path)
    assert (raised.value.path, raised.value.line, raised.value.key) == (
        Path("domain.yml"),
        line_of(path, needle),
        key,
    )
    assert message in raised.value.message


# --- training data ------------------------------------------------------------------------------

NLU = """
    version: "3.1"
    nlu:
      - intent: order_status
        examples: |
          - where is order [A-123](order_id)

          - status of [my premium](plan:premium) order [B-9]{"entity": "order_id"}
          - switch to [Premium Plus]{"entity": "plan", "value": "premium"} please
      - intent: faq/opening_hours
        examples: |
          - when are you open
      - synonym: premium
        examples: |
          - pro
          - Gold
      - regex: order_id
        examples: |
          - [A-Z]-\\d+
      - lookup: plan
        examples: |
          - free
          - premium
    """

RULES = """
    rules:
      - rule: Greet at the start
        conversation_start: true
        steps:
          - intent: greet
          - action: utter_greet
      - rule: Check the order once we know it
        condition:
          - active_loop: order_form
          - slot_was_set:
              - order_id
        steps:
          - intent: order_status
            entities:
              - order_id: A-123
          - action: action_check_order
          - slot_was_set:
              - wants_agent: true
          - active_loop: null
        wait_for_user_input: false
    stories:
      - story: faq then thanks
        steps:
          - intent: faq
          - action: utter_faq
    """


def test_entity_annotations_become_spans_on_the_clean_text(tmp_path: Path) -> None:
    data = load_training_data([write(tmp_path, "data/nlu.yml", NLU)], root=tmp_path)
    first, second, third = data.examples[:3]

    assert first.text == "where is order A-123"
    assert first.entities == (EntitySpan("order_id", 15, 20, "A-123"),)
    assert second.text == "status of my premium order B-9"
    assert [(second.text[s.start : s.end], s.entity, s.value) for s in second.entities] == [
        ("my premium", "plan", "premium"),
        ("B-9", "order_id", "B-9"),
    ]
    assert third.text == "switch to Premium Plus please"
    assert [(third.text[s.start : s.end], s.value) for s in third.entities] == [("Premium Plus", "premium")]


def test_examples_point_at_their_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "data/nlu.yml", NLU)
    data = load_training_data([path], root=tmp_path)
    assert [example.source for example in data.examples] == [
        f"data/nlu.yml:{line_of(path, 'where is order')}",
        f"data/nlu.yml:{line_of(path, 'status of')}",  # a blank line sits in between
        f"data/nlu.yml:{line_of(path, 'switch to')}",
        f"data/nlu.yml:{line_of(path, 'when are you open')}",
    ]
    assert data.examples[3].intent == "faq/opening_hours"
    assert data.intents() == ["order_status", "faq/opening_hours"]


def test_synonyms_regexes_and_lookups(tmp_path: Path) -> None:
    path = write(tmp_path, "data/nlu.yml", NLU)
    data = load_training_data([path], root=tmp_path)
    assert data.synonyms == {
        "my premium": "premium",
        "premium plus": "premium",
        "pro": "premium",
        "gold": "premium",
    }
    assert data.regexes == [RegexPattern("order_id", r"[A-Z]-\d+", f"data/nlu.yml:{line_of(path, '[A-Z]')}")]
    assert data.lookups == {"plan": ["free", "premium"]}


def test_examples_may_be_a_list_with_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "data/nlu.yml",
        """
        nlu:
          - intent: greet
            examples:
              - text: hi there
                metadata: {sentiment: neutral}
              - hello
        """,
    )
    data = load_training_data([path], root=tmp_path)
    assert [(e.text, e.source) for e in data.examples] == [
        ("hi there", f"data/nlu.yml:{line_of(path, 'hi there')}"),
        ("hello", f"data/nlu.yml:{line_of(path, 'hello')}"),
    ]


def test_rules_and_stories_keep_every_step(tmp_path: Path) -> None:
    path = write(tmp_path, "data/rules.yml", RULES)
    data = load_training_data([path], root=tmp_path)
    greet, check = data.rules

    def at(needle: str) -> str:
        return f"data/rules.yml:{line_of(path, needle)}"

    assert (greet.name, greet.conversation_start, greet.condition) == ("Greet at the start", True, ())
    assert greet.steps == (UserStep("greet"), ActionStep("utter_greet"))
    assert [step.source for step in greet.steps] == [at("intent: greet"), at("action: utter_greet")]
    # A bare slot name means "set to any value".
    assert check.condition == (ActiveLoopStep("order_form"), SlotStep("order_id", None, any_value=True))
    assert check.steps == (
        UserStep("order_status", entities=(StepEntity("order_id", "A-123"),)),
        ActionStep("action_check_order"),
        SlotStep("wants_agent", True),
        ActiveLoopStep(None),
    )
    # A slot_was_set step is located at its `- slot_was_set:` line, which occurs twice here.
    assert [step.source for step in (*check.condition, *check.steps)] == [
        at("active_loop: order_form"),
        f"data/rules.yml:{line_of(path, 'active_loop: order_form') + 1}",
        at("intent: order_status"),
        at("action: action_check_order"),
        f"data/rules.yml:{line_of(path, 'wants_agent') - 1}",
        at("active_loop: null"),
    ]
    assert check.wait_for_user_input is False
    assert check.source == at("rule: Check the order")
    assert data.stories[0].steps == (UserStep("faq"), ActionStep("utter_faq"))
    assert data.stories[0].name == "faq then thanks"


@pytest.mark.parametrize(
    ("text", "needle", "key", "message"),
    [
        ("nlu: []\nsteps: []\n", "steps", "steps", "unknown key"),
        ("version: '3.1'\n", "version", None, "not a training data file"),
        (
            "nlu:\n  - intent: greet\n    examples: |\n      - hi\n      hello\n",
            "hello",
            "nlu[0].examples",
            "expected a line like `- example`",
        ),
        (
            'nlu:\n  - intent: greet\n    examples: |\n      - hi\n      - hi [x]{"entity": 1}\n',
            "hi [x]",
            "nlu[0].examples",
            'needs an "entity" name',
        ),
        (
            "nlu:\n  - intent: greet\n    regex: x\n    examples: |\n      - hi\n",
            "intent: greet",
            "nlu[0]",
            "expected exactly one of",
        ),
        (
            "rules:\n  - rule: r\n    steps:\n      - intent: greet\n      - checkpoint: later\n",
            "- checkpoint:",
            "rules[0].steps[1]",
            "a `checkpoint` step is not allowed in a rule",
        ),
        (
            "stories:\n  - story: s\n    steps:\n      - intent: greet\n        action: utter_greet\n",
            "intent: greet",
            "stories[0].steps[0]",
            "unsupported step with keys intent, action",
        ),
        (
            (
                "nlu:\n  - synonym: premium\n    examples: |\n      - pro\n  - synonym: basic\n"
                "    examples: |\n      - Pro\n"
            ),
            "- Pro",
            "synonyms.pro",
            "maps to 'basic' here but to 'premium' at data/bad.yml:4",
        ),
    ],
)
def test_training_data_errors_point_at_the_bad_line(
    tmp_path: Path, text: str, needle: str, key: str | None, message: str
) -> None:
    path = write(tmp_path, "data/bad.yml", text)
    with pytest.raises(ProjectFileError) as raised:
        load_training_data([path], root=tmp_path)
    assert (raised.value.path, raised.value.line, raised.value.key) == (
        Path("data/bad.yml"),
        line_of(path, needle),
        key,
    )
    assert message in raised.value.message


# --- config -------------------------------------------------------------------------------------

CONFIG = """
    recipe: default.v1
    assistant_id: demo-bank
    language: en
    pipeline:
      - name: SentenceEncoder
        model: multilingual-use-v3
      - name: RuleEntityExtractor
      - name: CalibratedIntentClassifier
        lexical_features: false
        regularization: 2
        calibration_folds: 3
      - name: KnowledgeBaseRetriever
        lexical_weight: 0.5
        top_k: 7
    policies:
      - name: SupportPolicy
        target_precision: 0.9
        clarify_margin: 0.1
        max_clarify_options: 4
        max_failed_turns: 3
        out_of_scope_intent: chitchat
        handoff_intents: [human_handoff, complain]
        unseen_topic_share: 0.05
    """


def test_config_reads_every_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yml", CONFIG)
    config = load_config(path, root=tmp_path)
    assert (config.recipe, config.assistant_id, config.language, config.path) == (
        "default.v1",
        "demo-bank",
        "en",
        path,
    )
    assert config.encoder == EncoderSettings(model="multilingual-use-v3")
    assert config.entities.enabled is True
    assert config.classifier == ClassifierSettings(lexical_features=False, regularization=2.0, calibration_folds=3)
    assert config.retriever == RetrieverSettings(lexical_weight=0.5, top_k=7)
    assert config.policy == PolicySettings(
        0.9, 0.1, 4, 3, "chitchat", ["human_handoff", "complain"], unseen_topic_share=0.05
    )


def test_missing_config_means_documented_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.yml")
    assert config == ProjectConfig()
    assert (config.language, config.recipe) == ("en", "default.v1")
    assert config.encoder.model == "all-MiniLM-L6-v2"
    assert config.entities.enabled is True
    assert config.classifier == ClassifierSettings(True, 10.0, 5)
    assert config.retriever == RetrieverSettings(0.35, 5)
    assert config.policy == PolicySettings(0.95, 0.15, 3, 2, "out_of_scope", ["human_handoff"])


def test_entity_extraction_is_off_when_not_in_the_pipeline(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yml", CONFIG.replace("      - name: RuleEntityExtractor\n", ""))
    assert load_config(path).entities.enabled is False


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        (
            "lexical_weight: 0.5",
            "lexical_wieght: 0.5",
            "lexical_wieght",
            "pipeline[3].lexical_wieght: unknown key; expected one of: name, lexical_weight, top_k",
        ),
        (
            "name: RuleEntityExtractor",
            "name: FancyExtractor",
            "FancyExtractor",
            (
                "pipeline[1].name: unknown pipeline entry 'FancyExtractor'; available: SentenceEncoder, "
                "RuleEntityExtractor, CalibratedIntentClassifier, KnowledgeBaseRetriever"
            ),
        ),
        (
            "target_precision: 0.9",
            "target_precision: 0",
            "target_precision",
            "policies[0].target_precision: must be in (0, 1], got 0.0",
        ),
        (
            "unseen_topic_share: 0.05",
            "unseen_topic_share: 0.95",
            "unseen_topic_share",
            "policies[0].unseen_topic_share: must be in [0, 0.9], got 0.95",
        ),
        ("top_k: 7", "top_k: 0", "top_k", "pipeline[3].top_k: must be in [1, inf], got 0"),
        (
            "top_k: 7",
            "top_k: 7\n        context_weight: 2",
            "context_weight",
            "pipeline[3].context_weight: must be in [0, 1], got 2",
        ),
        ("top_k: 7", "top_k: many", "top_k", "pipeline[3].top_k: expected an integer, got 'many'"),
        (
            "lexical_features: false",
            "lexical_features: 1",
            "lexical_features",
            "expected true or false, got 1",
        ),
        (
            "model: multilingual-use-v3",
            "model: bert",
            "model: bert",
            "pipeline[0].model: 'bert' is not available; expected one of: all-MiniLM-L6-v2, multilingual-use-v3",
        ),
        ("language: en", "langauge: en", "langauge", "langauge: unknown key"),
    ],
)
def test_config_errors_name_file_line_and_key_path(
    tmp_path: Path, old: str, new: str, needle: str, expected: str
) -> None:
    path = write(tmp_path, "config.yml", CONFIG.replace(old, new))
    with pytest.raises(ProjectFileError) as raised:
        load_config(path, root=tmp_path)
    assert str(raised.value).startswith(f"config.yml:{line_of(path, needle)}: ")
    assert expected in str(raised.value)


def test_rasa_components_and_policies_are_ignored_with_a_warning(tmp_path: Path) -> None:
    text = CONFIG.replace("      - name: RuleEntityExtractor\n", "      - name: DIETClassifier\n        epochs: 100\n")
    path = write(
        tmp_path, "config.yml", text.rstrip(" ") + "      - name: RulePolicy\n      - name: my_addons.Policy\n"
    )
    config = load_config(path, root=tmp_path)
    assert config.entities.enabled is False
    assert config.policy.target_precision == 0.9
    assert [(w.line, w.key, w.message.split(";")[0]) for w in config.warnings] == [
        (line_of(path, "DIETClassifier"), "pipeline[1].name", "'DIETClassifier' is a Rasa NLU component"),
        (line_of(path, "RulePolicy"), "policies[1].name", "'RulePolicy' is a Rasa policy"),
        (line_of(path, "my_addons"), "policies[2].name", "'my_addons.Policy' is a custom Rasa policy"),
    ]


def test_a_rasa_only_pipeline_means_crowddesk_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yml", "pipeline:\n  - name: WhitespaceTokenizer\npolicies:\n  - name: TEDPolicy\n")
    config = load_config(path, root=tmp_path)
    assert config == ProjectConfig(path=path)
    assert [w.key for w in config.warnings] == ["pipeline[0].name", "policies[0].name"]


def test_pipeline_must_name_the_required_components(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yml", "pipeline:\n  - name: SentenceEncoder\n")
    with pytest.raises(ProjectFileError) as raised:
        load_config(path, root=tmp_path)
    assert str(raised.value) == (
        "config.yml:1: pipeline: missing required entries: CalibratedIntentClassifier, KnowledgeBaseRetriever"
    )


def test_fingerprint_follows_training_settings_only(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, "a.yml", CONFIG)).fingerprint_dict()
    renamed = load_config(write(tmp_path, "b.yml", CONFIG.replace("demo-bank", "other"))).fingerprint_dict()
    retuned = load_config(write(tmp_path, "c.yml", CONFIG.replace("top_k: 7", "top_k: 8"))).fingerprint_dict()
    assert json.loads(json.dumps(base)) == base
    assert renamed == base
    assert retuned != base


# --- endpoints ----------------------------------------------------------------------------------


def test_endpoints_substitute_environment_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "endpoints.yml",
        """
        action_endpoint:
          url: "http://${ACTIONS_HOST}:5055/webhook"
        tracker_store:
          type: sql
          dialect: postgresql
          url: db.internal
          port: 5433
          db: crowddesk
          username: bot
          password: ${DB_PASSWORD}
        """,
    )
    endpoints = load_endpoints(path, environ={"ACTIONS_HOST": "actions", "DB_PASSWORD": "p@ss/word"})
    assert endpoints.action_endpoint_url == "http://actions:5055/webhook"
    assert endpoints.database_url == "postgresql+psycopg://bot:p%40ss%2Fword@db.internal:5433/crowddesk"
    assert "p%40ss" not in repr(endpoints) and "p@ss" not in repr(endpoints)


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "endpoints.yml",
        """
        tracker_store:
          type: sql
          url: postgresql+psycopg://bot:${DB_PASSWORD}@localhost/crowddesk
        """,
    )
    with pytest.raises(MissingEnvironmentVariable) as raised:
        load_endpoints(path, root=tmp_path, environ={})
    assert str(raised.value) == (
        f"endpoints.yml:{line_of(path, 'url:')}: tracker_store.url: environment variable 'DB_PASSWORD' is not set"
    )


def test_crowddesk_environment_variables_override_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "endpoints.yml",
        """
        action_endpoint:
          url: http://localhost:5055/webhook
        tracker_store:
          type: sql
          url: postgresql+psycopg://bot@localhost/crowddesk
        """,
    )
    environ = {
        ACTION_ENDPOINT_ENV: "http://actions:9000/webhook",
        DATABASE_URL_ENV: "sqlite:////tmp/x.db",
    }
    assert load_endpoints(path, environ=environ) == Endpoints("http://actions:9000/webhook", "sqlite:////tmp/x.db")
    assert load_endpoints(path, environ={}) == Endpoints(
        "http://localhost:5055/webhook", "postgresql+psycopg://bot@localhost/crowddesk"
    )


def test_sqlite_file_lives_next_to_endpoints_yml(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints.yml", "tracker_store:\n  type: sql\n  dialect: sqlite\n  db: bot.db\n")
    assert load_endpoints(path, environ={}).database_url == f"sqlite:///{tmp_path / 'bot.db'}"


def test_missing_endpoints_file_configures_nothing(tmp_path: Path) -> None:
    assert load_endpoints(tmp_path / "endpoints.yml", environ={}) == Endpoints(None, None)


def test_delivery_retention_is_read_and_defaults_to_a_week(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints.yml", "delivery:\n  retention_days: ${RETENTION_DAYS}\n")
    assert load_endpoints(path, environ={"RETENTION_DAYS": "30"}).retention_days == 30
    assert load_endpoints(tmp_path / "missing.yml", environ={}).retention_days == 7


@pytest.mark.parametrize("days", ["0", "-1", "a week", "1.5"])
def test_delivery_retention_must_be_whole_days(tmp_path: Path, days: str) -> None:
    path = write(tmp_path, "endpoints.yml", f"delivery:\n  retention_days: {days}\n")
    with pytest.raises(ProjectFileError, match=r"endpoints.yml:2: delivery.retention_days: expected a whole"):
        load_endpoints(path, root=tmp_path, environ={})


def test_unsupported_tracker_store_type_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints.yml", "tracker_store:\n  type: redis\n  url: localhost\n")
    with pytest.raises(ProjectFileError, match=r"endpoints.yml:2: tracker_store.type: only `type: sql`"):
        load_endpoints(path, root=tmp_path, environ={})


def test_lock_store_takes_rasa_s_redis_settings_and_keeps_the_password_out_of_its_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "endpoints.yml",
        """
        lock_store:
          type: redis
          url: redis.internal
          port: 6380
          db: 2
          password: ${REDIS_PASSWORD}
          key_prefix: bank
          lock_lifetime: 30
        """,
    )
    lock_store = load_endpoints(path, environ={"REDIS_PASSWORD": "s3cr/et"}).lock_store
    assert lock_store == LockStore("redis://:s3cr%2Fet@redis.internal:6380/2", "bank", 30)
    assert "s3cr" not in repr(lock_store) and "redis.internal:6380" in repr(lock_store)


def test_lock_store_defaults_and_its_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints.yml", "lock_store:\n  type: redis\n")
    assert load_endpoints(path, environ={}).lock_store == LockStore("redis://localhost:6379/0", "crowddesk", 10)
    environ = {REDIS_URL_ENV: "redis://cache:6379/1"}
    assert load_endpoints(path, environ=environ).lock_store == LockStore("redis://cache:6379/1", "crowddesk", 10)
    # The variable alone configures it, as twelve-factor deployments expect.
    assert load_endpoints(tmp_path / "none.yml", environ=environ).lock_store == LockStore("redis://cache:6379/1")
    in_memory = write(tmp_path, "in_memory.yml", "lock_store:\n  type: in_memory\n")
    assert load_endpoints(in_memory, environ={}).lock_store is None


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("  type: sql\n", r"endpoints.yml:2: lock_store.type: expected `redis` .* got 'sql'"),
        (
            "  type: redis\n  lock_lifetime: 0\n",
            r"endpoints.yml:3: lock_store.lock_lifetime: expected a whole number of sec",
        ),
        ("  type: redis\n  url: redis://h:6379/0\n  port: 6380\n", r"endpoints.yml:4: lock_store.port: give either"),
        ("  type: redis\n  url: http://h\n", r"endpoints.yml:3: lock_store.url: expected a redis://"),
        ("  type: redis\n  tls: true\n", r"endpoints.yml:3: lock_store.tls"),
    ],
)
def test_a_wrong_lock_store_setting_names_its_line_and_key(tmp_path: Path, block: str, message: str) -> None:
    path = write(tmp_path, "endpoints.yml", "lock_store:\n" + block)
    with pytest.raises(ProjectFileError, match=message):
        load_endpoints(path, root=tmp_path, environ={})


# --- whole project ------------------------------------------------------------------------------


def test_project_merges_data_responses_into_the_domain(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", "intents: [greet, faq]\nresponses:\n  utter_greet:\n    - text: Hi\n")
    write(tmp_path, "data/nlu.yml", "nlu:\n  - intent: faq/fees\n    examples: |\n      - any fees?\n")
    write(tmp_path, "data/faq/responses.yaml", "responses:\n  utter_faq/fees:\n    - text: None at all.\n")
    write(tmp_path, "data/README.md", "not training data\n")
    write(tmp_path, "config.yml", CONFIG)

    project = load_project(tmp_path, environ={})
    assert project.domain.response_names() == ["utter_greet", "utter_faq/fees"]
    assert project.domain.responses["utter_faq/fees"][0].source == "data/faq/responses.yaml:3"
    assert project.domain.retrieval_intents() == ["faq"]
    assert project.config.assistant_id == "demo-bank"
    assert project.endpoints == Endpoints(None, None)
    assert project.training_files() == [
        tmp_path / "data/faq/responses.yaml",
        tmp_path / "data/nlu.yml",
        tmp_path / "domain.yml",
    ]


def test_response_in_domain_and_data_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", "responses:\n  utter_greet:\n    - text: Hi\n")
    write(tmp_path, "data/responses.yml", "responses:\n  utter_greet:\n    - text: Hello\n")
    with pytest.raises(ProjectFileError) as raised:
        load_project(tmp_path, environ={})
    assert str(raised.value) == "data/responses.yml:2: responses.utter_greet: already defined at domain.yml:2"


def test_project_without_domain_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match=r"no domain\.yml or domain/ directory"):
        load_project(tmp_path, environ={})
