"""The project's `config.yml`: CrowdDesk's pipeline components and support policy, validated."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

from crowddesk.bot.project.yaml_files import (
    FileWarning,
    YamlFile,
    item_line,
    key_line,
    read_yaml,
    reject_unknown_keys,
    require_mapping,
    require_sequence,
    require_str,
    value_line,
)
from crowddesk.knowledge_base.dense import INDEX_KINDS, IndexSettings
from crowddesk.knowledge_base.lexical import CONTEXT_WEIGHT
from crowddesk.knowledge_base.redaction import Redactor

MEMOIZATION_POLICIES = ("MemoizationPolicy", "AugmentedMemoizationPolicy")
# `version` is the Rasa format version, as in the other project files.
CONFIG_KEYS = ("version", "recipe", "assistant_id", "language", "pipeline", "policies")
RECIPES = ("default.v1",)
DEFAULT_ASSISTANT_ID = "crowddesk-assistant"
# Registry names the sentence encoder understands.
ENCODER_MODELS = ("all-MiniLM-L6-v2", "multilingual-use-v3")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")

RASA_COMPONENTS = frozenset(
    {
        "WhitespaceTokenizer",
        "JiebaTokenizer",
        "MitieTokenizer",
        "SpacyTokenizer",
        "LanguageModelTokenizer",
        "ConveRTTokenizer",
        "MitieNLP",
        "SpacyNLP",
        "HFTransformersNLP",
        "RegexFeaturizer",
        "LexicalSyntacticFeaturizer",
        "CountVectorsFeaturizer",
        "ConveRTFeaturizer",
        "LanguageModelFeaturizer",
        "MitieFeaturizer",
        "SpacyFeaturizer",
        "DIETClassifier",
        "FallbackClassifier",
        "KeywordIntentClassifier",
        "LogisticRegressionClassifier",
        "MitieIntentClassifier",
        "SklearnIntentClassifier",
        "CRFEntityExtractor",
        "DucklingEntityExtractor",
        "MitieEntityExtractor",
        "SpacyEntityExtractor",
        "RegexEntityExtractor",
        "EntitySynonymMapper",
        "ResponseSelector",
    }
)
RASA_POLICIES = frozenset(
    {
        "MemoizationPolicy",
        "AugmentedMemoizationPolicy",
        "RulePolicy",
        "TEDPolicy",
        "UnexpecTEDIntentPolicy",
        "FormPolicy",
        "MappingPolicy",
        "FallbackPolicy",
        "TwoStageFallbackPolicy",
    }
)


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric setting; `low_open` excludes the lower bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def violation(self, value: float) -> str | None:
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if not (too_low or too_high):
            return None
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"must be in {'(' if self.low_open else '['}{low}, {high}], got {value!r}"


def _setting(
    default: Any = None,
    *,
    bounds: Bounds | None = None,
    choices: tuple[str, ...] = (),
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field readable from config.yml, with its allowed values (`check` returns
    why a value is not allowed, or None)."""
    metadata = {"bounds": bounds, "choices": choices, "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=default.copy, metadata=metadata)
    return field(default=default, metadata=metadata)


def regex_problem(patterns: list[str]) -> str | None:
    """Why one of `patterns` is not a valid regular expression, or None."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"{pattern!r} is not a valid regular expression: {exc}"
    return None


@dataclass
class EncoderSettings:
    model: str = _setting("all-MiniLM-L6-v2", choices=ENCODER_MODELS)


@dataclass
class EntitySettings:
    # Set by whether RuleEntityExtractor is in the pipeline, not by an option of it.
    enabled: bool = field(default=True, metadata={"internal": True})


@dataclass
class ClassifierSettings:
    lexical_features: bool = _setting(True)
    regularization: float = _setting(10.0, bounds=Bounds(low=0, low_open=True))
    calibration_folds: int = _setting(5, bounds=Bounds(low=2))


@dataclass
class IngestionSettings:
    """The `ingestion:` block of KnowledgeBaseRetriever: how `crowddesk kb import` reads community
    sources (no retraining needed)."""

    # An answer that is not accepted needs at least this score (votes / likes) to be imported.
    min_answer_score: int = _setting(1)
    min_answer_chars: int = _setting(20, bounds=Bounds(low=1))
    # Questions whose embeddings are at least this similar (cosine) become variants of one entry.
    duplicate_threshold: float = _setting(0.92, bounds=Bounds(low=0, high=1, low_open=True))
    # Entries whose source (or, without one, the store) saw no change for this long are stale.
    stale_after_days: int = _setting(365, bounds=Bounds(low=1))
    # Extra regular expressions whose matches are redacted like e-mail addresses, as [redacted].
    redact_patterns: list[str] = _setting([], check=regex_problem)

    def redactor(self) -> Redactor:
        """The built-in PII rules plus `redact_patterns`: for imports and every other place
        customer text is kept (suggestions, entries from the consoles, the gap report)."""
        return Redactor(self.redact_patterns)


@dataclass
class RetrieverSettings:
    lexical_weight: float = _setting(0.35, bounds=Bounds(low=0, high=1))
    top_k: int = _setting(5, bounds=Bounds(low=1))
    # Weight of an entry's context words (a community thread's body) in its BM25 document,
    # against 1 for its questions; 0 leaves bodies out.
    context_weight: float = _setting(CONTEXT_WEIGHT, bounds=Bounds(low=0, high=1))
    # FAISS index: "auto" is exact below `exact_below` question variants, "ivf" from there on.
    index: str = _setting("auto", choices=INDEX_KINDS)
    exact_below: int = _setting(10_000, bounds=Bounds(low=1))
    ivf_probes: int = _setting(16, bounds=Bounds(low=1))
    hnsw_m: int = _setting(32, bounds=Bounds(low=2))
    hnsw_ef_search: int = _setting(128, bounds=Bounds(low=1))
    # Entries changed since the index was last fully built at which it is rebuilt (run time only).
    compact_after: int = _setting(1_000, bounds=Bounds(low=1))
    ingestion: IngestionSettings = field(default_factory=IngestionSettings)

    def index_settings(self) -> IndexSettings:
        """The FAISS index options, as the knowledge base takes them."""
        return IndexSettings(
            kind=self.index,
            exact_below=self.exact_below,
            ivf_probes=self.ivf_probes,
            hnsw_m=self.hnsw_m,
            hnsw_ef_search=self.hnsw_ef_search,
            compact_after=self.compact_after,
        )


@dataclass
class FrustrationSettings:
    """When the rule-based frustration detector hands a customer to a person."""

    enabled: bool = _setting(True)
    # Points needed to hand off: 1 per negative phrase, 2 for abuse or a repeated message,
    # +1 each for ALL CAPS and "!!!"/"???" on a message that already has a negative cue.
    threshold: float = _setting(2.0, bounds=Bounds(low=0, low_open=True))
    extra_phrases: list[str] = _setting([])
    # How alike two messages must be (0..1, difflib ratio) to count as the customer repeating.
    repeat_similarity: float = _setting(0.85, bounds=Bounds(low=0, high=1, low_open=True))
    history_messages: int = _setting(10, bounds=Bounds(low=1))


@dataclass
class PersonRequestSettings:
    """When words that ask for a person ("get me a human") hand off, whatever the intent."""

    enabled: bool = _setting(True)
    # More phrases that ask for a person in this project, e.g. "call me back".
    extra_phrases: list[str] = _setting([])


@dataclass
class SlaSettings:
    """Minutes to the first human reply, and when to warn before missing it."""

    messaging_minutes: float = _setting(30.0, bounds=Bounds(low=0, low_open=True))
    other_minutes: float = _setting(60.0, bounds=Bounds(low=0, low_open=True))
    messaging_channels: list[str] = _setting(["telegram", "slack", "webchat", "whatsapp", "messenger", "shell"])
    # Per-channel targets that override the two above, e.g. {email: 240}.
    channel_minutes: dict[str, float] = _setting({}, bounds=Bounds(low=0, low_open=True))
    high_priority_factor: float = _setting(0.5, bounds=Bounds(low=0, high=1, low_open=True))
    warning_minutes: float = _setting(5.0, bounds=Bounds(low=0))
    check_seconds: float = _setting(15.0, bounds=Bounds(low=0, low_open=True))


@dataclass
class WaitSettings:
    """How the wait a queued customer is told is estimated from the live queue."""

    # Used while no resolved ticket has a measured time to first reply.
    default_first_reply_minutes: float = _setting(10.0, bounds=Bounds(low=0, low_open=True))
    recent_tickets: int = _setting(50, bounds=Bounds(low=1))
    # An agent who claimed, replied, resolved or signed in this recently counts as active.
    active_agent_minutes: float = _setting(30.0, bounds=Bounds(low=0, low_open=True))
    max_minutes: float = _setting(240.0, bounds=Bounds(low=1))


@dataclass
class HandoffSettings:
    """The `handoff:` block of SupportPolicy: runtime settings that need no retraining."""

    frustration: FrustrationSettings = field(default_factory=FrustrationSettings)
    person_request: PersonRequestSettings = field(default_factory=PersonRequestSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    expected_wait: WaitSettings = field(default_factory=WaitSettings)


UNHELPFUL_ACTIONS = ("offer_handoff", "handoff")


@dataclass
class FeedbackSettings:
    """The `feedback:` block of SupportPolicy: Helpful / Not helpful buttons on KB answers."""

    enabled: bool = _setting(False)
    # offer_handoff: apologise and offer a person (utter_kb_feedback_unhelpful and its
    # buttons); handoff: hand the conversation to a person at once.
    on_unhelpful: str = _setting("offer_handoff", choices=UNHELPFUL_ACTIONS)
    # After a Helpful press the bot asks the rating question (utter_ask_rating) and stores the
    # answer on that press: the CSAT of the bot's own answers, next to that of people's tickets.
    ask_rating: bool = _setting(False)


@dataclass
class PrivacySettings:
    """The `privacy:` block of SupportPolicy: PII redaction beyond the knowledge base (run time
    only; off by default, as agents then see "[card]" where the customer typed the number)."""

    # Customer text is redacted before it is stored in events and tickets; the NLU still reads
    # the message as sent, for that turn only.
    redact_transcripts: bool = _setting(False)
    # Log messages passing through the root's and uvicorn's handlers are redacted.
    redact_logs: bool = _setting(False)


# A public acknowledgement must fit the shortest public reply CrowdDesk posts: a post on X.
MAX_ACKNOWLEDGEMENT_CHARS = 280


def acknowledgement_problem(text: str) -> str | None:
    """Why `text` (a non-empty string) cannot be posted as the public acknowledgement, or None."""
    if len(text) > MAX_ACKNOWLEDGEMENT_CHARS:
        return f"must be at most {MAX_ACKNOWLEDGEMENT_CHARS} characters (a post on X), got {len(text)}"
    return None


@dataclass
class PublicPostSettings:
    """The `public_posts:` block of SupportPolicy: replies to public posts (X mentions, page
    comments), run time only. Anything personal or account-specific continues in private."""

    # Posted in public under the customer's post when the conversation continues in private.
    acknowledgement: str = _setting("Thanks, we've sent you a private message.", check=acknowledgement_problem)
    # A public post from an account with at least this many followers, or one gaining at least
    # this many replies an hour, goes to a person with high priority (it could go viral).
    high_priority_followers: int = _setting(10_000, bounds=Bounds(low=1))
    high_priority_replies_per_hour: int = _setting(20, bounds=Bounds(low=1))


@dataclass
class PolicySettings:
    target_precision: float = _setting(0.95, bounds=Bounds(low=0, high=1, low_open=True))
    clarify_margin: float = _setting(0.15, bounds=Bounds(low=0, high=1))
    max_clarify_options: int = _setting(3, bounds=Bounds(low=2))
    max_failed_turns: int = _setting(2, bounds=Bounds(low=1))
    out_of_scope_intent: str = _setting("out_of_scope")
    handoff_intents: list[str] = _setting(["human_handoff"])
    # Share of clarifying questions whose buttons include the right answer; lower than
    # target_precision because the customer, not the bot, makes the final choice.
    clarify_precision: float = _setting(0.8, bounds=Bounds(low=0, high=1, low_open=True))
    # Intents a person must handle (fraud, complaints), handed off with high priority
    # however confident the classifier is.
    always_human_intents: list[str] = _setting([])
    # Share of messages expected to be about topics no intent or FAQ entry covers (a new outage,
    # a new product). Training holds whole intents out to see how such messages score, and the
    # answer threshold keeps target_precision on traffic with this share of them.
    unseen_topic_share: float = _setting(0.15, bounds=Bounds(low=0, high=0.9))
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    public_posts: PublicPostSettings = field(default_factory=PublicPostSettings)


def never_answered_intents(settings: PolicySettings) -> frozenset[str]:
    """Intents the policy always hands to a person, however confident the classifier is."""
    return frozenset({settings.out_of_scope_intent, *settings.handoff_intents, *settings.always_human_intents})


PIPELINE_COMPONENTS: dict[str, type] = {
    "SentenceEncoder": EncoderSettings,
    "RuleEntityExtractor": EntitySettings,
    "CalibratedIntentClassifier": ClassifierSettings,
    "KnowledgeBaseRetriever": RetrieverSettings,
}
POLICIES: dict[str, type] = {"SupportPolicy": PolicySettings}
OPTIONAL_COMPONENTS = ("RuleEntityExtractor",)


@dataclass
class ProjectConfig:
    language: str = "en"
    assistant_id: str = DEFAULT_ASSISTANT_ID
    recipe: str = "default.v1"
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    entities: EntitySettings = field(default_factory=EntitySettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    retriever: RetrieverSettings = field(default_factory=RetrieverSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    story_max_history: int | None = None
    """MemoizationPolicy's `max_history`: the turns before an action a story is matched on
    (None, Rasa's default: the whole conversation)."""
    path: Path | None = None
    # Entries read but ignored (Rasa's components and policies), for `data validate` to show.
    warnings: list[FileWarning] = field(default_factory=list, compare=False)

    def fingerprint_dict(self) -> dict[str, Any]:
        """Everything that changes what training produces (not the assistant id or file path)."""
        return {
            "language": self.language,
            "recipe": self.recipe,
            "encoder": asdict(self.encoder),
            "entities": asdict(self.entities),
            "classifier": asdict(self.classifier),
            # Ingestion settings act on `kb import` only, compact_after on the live index only.
            "retriever": {k: v for k, v in asdict(self.retriever).items() if k not in ("ingestion", "compact_after")},
            # Handoff, feedback, privacy and public post settings act at run time only; no retraining.
            "policy": {
                k: v
                for k, v in asdict(self.policy).items()
                if k not in ("handoff", "feedback", "privacy", "public_posts")
            },
        }


def load_config(path: Path, *, root: Path | None = None) -> ProjectConfig:
    """Read config.yml; a missing file (or missing section) means CrowdDesk's defaults."""
    if not path.exists():
        return ProjectConfig()
    file = read_yaml(path, root)
    if file.content is None:
        return ProjectConfig(path=path)
    top = require_mapping(file, file.content, "config", 1)
    reject_unknown_keys(file, top, CONFIG_KEYS, "")
    config = ProjectConfig(path=path)
    if top.get("version") is not None:
        require_str(file, top["version"], "version", value_line(top, "version"))
    if top.get("recipe") is not None:
        config.recipe = _choice(file, top, "recipe", RECIPES)
    if top.get("assistant_id") is not None:
        config.assistant_id = require_str(file, top["assistant_id"], "assistant_id", value_line(top, "assistant_id"))
    if top.get("language") is not None:
        config.language = require_str(file, top["language"], "language", value_line(top, "language"))
        if not _LANGUAGE_CODE.match(config.language):
            raise file.error(
                value_line(top, "language"),
                "language",
                f"{config.language!r} is not a language code like 'en'",
            )
    components = (
        _parse_components(file, top, "pipeline", PIPELINE_COMPONENTS, config.warnings) if top.get("pipeline") else {}
    )
    if components:
        config.encoder = components["SentenceEncoder"]
        config.entities = replace(
            components.get("RuleEntityExtractor", EntitySettings()),
            enabled="RuleEntityExtractor" in components,
        )
        config.classifier = components["CalibratedIntentClassifier"]
        config.retriever = components["KnowledgeBaseRetriever"]
    policies = _parse_components(file, top, "policies", POLICIES, config.warnings) if top.get("policies") else {}
    config.story_max_history = _memoization_max_history(file, top)
    if policies:
        config.policy = policies["SupportPolicy"]
    return config


def _choice(file: YamlFile, parent: Any, key: str, choices: tuple[str, ...]) -> str:
    value = require_str(file, parent[key], key, value_line(parent, key))
    if value not in choices:
        raise file.error(
            value_line(parent, key),
            key,
            f"{value!r} is not supported; expected one of: {', '.join(choices)}",
        )
    return value


def _parse_components(
    file: YamlFile, top: Any, section: str, registry: dict[str, type], warnings: list[FileWarning]
) -> dict[str, Any]:
    """Build the settings object of every CrowdDesk component listed under `section`; Rasa's
    components and policies (built-in or custom) are skipped with a warning. A section listing
    only Rasa entries gives an empty result, so CrowdDesk's defaults apply."""
    items = require_sequence(file, top[section], section, key_line(top, section))
    available = ", ".join(registry)
    built: dict[str, Any] = {}
    for index, node in enumerate(items):
        key = f"{section}[{index}]"
        item = require_mapping(file, node, key, item_line(items, index))
        line = key_line(item, "name")
        name = require_str(file, item.get("name"), f"{key}.name", line)
        ignored = _ignored_rasa_entry(name, section, available)
        if ignored is not None:
            warnings.append(file.warning(line, f"{key}.name", ignored))
            continue
        if name not in registry:
            raise file.error(line, f"{key}.name", f"unknown {section} entry {name!r}; available: {available}")
        if name in built:
            raise file.error(line, f"{key}.name", f"{name!r} is listed twice")
        built[name] = _build_settings(file, registry[name], item, key)
    required = [name for name in registry if name not in OPTIONAL_COMPONENTS and name not in built]
    if built and required:
        raise file.error(key_line(top, section), section, f"missing required entries: {', '.join(required)}")
    return built


def _memoization_max_history(file: YamlFile, top: Any) -> int | None:
    """`max_history` of a listed MemoizationPolicy (or AugmentedMemoizationPolicy), if any."""
    for index, item in enumerate(top.get("policies") or []):
        if isinstance(item, dict) and item.get("name") in MEMOIZATION_POLICIES and item.get("max_history") is not None:
            value = item["max_history"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise file.error(
                    value_line(item, "max_history"), f"policies[{index}].max_history", "expected a whole number >= 1"
                )
            return value
    return None


def _ignored_rasa_entry(name: str, section: str, available: str) -> str | None:
    """Why a Rasa pipeline component or policy is ignored, or None when `name` is not Rasa's.
    A dotted name is a Python path, i.e. a custom Rasa component or policy."""
    custom = "." in name
    if section == "pipeline" and (custom or name in RASA_COMPONENTS):
        kind = "custom Rasa component" if custom else "Rasa NLU component"
        return (
            f"{name!r} is a {kind}; ignored with its options: CrowdDesk understands messages with its "
            f"own NLU pipeline ({available}), with default settings unless that pipeline is listed here"
        )
    if section == "policies" and name in MEMOIZATION_POLICIES:
        return (
            f"{name!r}: CrowdDesk remembers the stories as it does, with its `max_history`; its other "
            "options are ignored"
        )
    if section == "policies" and (custom or name in RASA_POLICIES):
        kind = "custom Rasa policy" if custom else "Rasa policy"
        return (
            f"{name!r} is a {kind}; its options are ignored: CrowdDesk runs the project's rules, "
            "stories and forms with its own dialogue policies (rules as RulePolicy, stories as "
            f"MemoizationPolicy), alongside {available}"
        )
    return None


def _build_settings(
    file: YamlFile, settings_class: type, item: Any, key: str, extra_keys: tuple[str, ...] = ("name",)
) -> Any:
    options = [f for f in fields(settings_class) if not f.metadata.get("internal")]
    reject_unknown_keys(file, item, [*extra_keys, *(option.name for option in options)], key)
    hints = get_type_hints(settings_class)
    values: dict[str, Any] = {}
    for option in options:
        if option.name not in item:
            continue
        option_key = f"{key}.{option.name}"
        line = value_line(item, option.name)
        if is_dataclass(hints[option.name]):
            block = require_mapping(file, item[option.name], option_key, line)
            values[option.name] = _build_settings(file, hints[option.name], block, option_key, ())
            continue
        value = _typed_value(file, item[option.name], hints[option.name], option_key, line)
        check = option.metadata.get("check")
        problem = _problem(value, option.metadata.get("bounds"), option.metadata.get("choices", ())) or (
            check(value) if check else None
        )
        if problem:
            raise file.error(line, option_key, problem)
        values[option.name] = value
    return settings_class(**values)


def _problem(value: Any, bounds: Bounds | None, choices: tuple[str, ...]) -> str | None:
    """Why `value` (or, for a mapping, one of its values) is out of its allowed range."""
    if isinstance(value, dict):
        return next(
            (f"{name}: {problem}" for name, entry in value.items() if (problem := _problem(entry, bounds, choices))),
            None,
        )
    if choices and value not in choices:
        return f"{value!r} is not available; expected one of: {', '.join(choices)}"
    return bounds.violation(value) if bounds is not None else None


def _typed_value(file: YamlFile, value: Any, hint: Any, key: str, line: int | None) -> Any:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and is_number and float(value).is_integer():
        return int(value)
    if hint is float and is_number:
        return float(value)
    if hint is str:
        return require_str(file, value, key, line)
    if hint == list[str] and isinstance(value, list):
        return [require_str(file, entry, f"{key}[{index}]", line) for index, entry in enumerate(value)]
    if hint == dict[str, float] and isinstance(value, dict):
        return {
            require_str(file, name, key, line): _typed_value(file, entry, float, f"{key}.{name}", line)
            for name, entry in value.items()
        }
    expected = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        list[str]: "a list of strings",
        dict[str, float]: "a mapping of names to numbers",
    }[hint]
    raise file.error(line, key, f"expected {expected}, got {value!r}")
