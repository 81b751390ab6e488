"""The project's `config.yml`: CrowdDesk's pipeline components and support policy, validated."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from crowddesk.bot.yaml_files import (
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

CONFIG_KEYS = ("recipe", "assistant_id", "language", "pipeline", "policies")
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


def _setting(default: Any = None, *, bounds: Bounds | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field readable from config.yml, with its allowed values."""
    metadata = {"bounds": bounds, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


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
class RetrieverSettings:
    lexical_weight: float = _setting(0.35, bounds=Bounds(low=0, high=1))
    top_k: int = _setting(5, bounds=Bounds(low=1))


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
    path: Path | None = None

    def fingerprint_dict(self) -> dict[str, Any]:
        """Everything that changes what training produces (not the assistant id or file path)."""
        return {
            "language": self.language,
            "recipe": self.recipe,
            "encoder": asdict(self.encoder),
            "entities": asdict(self.entities),
            "classifier": asdict(self.classifier),
            "retriever": asdict(self.retriever),
            "policy": asdict(self.policy),
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
    if top.get("recipe") is not None:
        config.recipe = _choice(file, top, "recipe", RECIPES)
    if top.get("assistant_id") is not None:
        config.assistant_id = require_str(
            file, top["assistant_id"], "assistant_id", value_line(top, "assistant_id")
        )
    if top.get("language") is not None:
        config.language = require_str(file, top["language"], "language", value_line(top, "language"))
        if not _LANGUAGE_CODE.match(config.language):
            raise file.error(
                value_line(top, "language"),
                "language",
                f"{config.language!r} is not a language code like 'en'",
            )
    if top.get("pipeline"):
        components = _parse_components(file, top, "pipeline", PIPELINE_COMPONENTS, RASA_COMPONENTS)
        config.encoder = components["SentenceEncoder"]
        config.entities = replace(
            components.get("RuleEntityExtractor", EntitySettings()),
            enabled="RuleEntityExtractor" in components,
        )
        config.classifier = components["CalibratedIntentClassifier"]
        config.retriever = components["KnowledgeBaseRetriever"]
    if top.get("policies"):
        config.policy = _parse_components(file, top, "policies", POLICIES, RASA_POLICIES)[
            "SupportPolicy"
        ]
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
    file: YamlFile, top: Any, section: str, registry: dict[str, type], rasa_names: frozenset[str]
) -> dict[str, Any]:
    """Build the settings object of every component listed under `section`."""
    items = require_sequence(file, top[section], section, key_line(top, section))
    available = ", ".join(registry)
    built: dict[str, Any] = {}
    for index, node in enumerate(items):
        key = f"{section}[{index}]"
        item = require_mapping(file, node, key, item_line(items, index))
        line = key_line(item, "name")
        name = require_str(file, item.get("name"), f"{key}.name", line)
        if name in rasa_names:
            kind, verb = ("component", "is") if section == "pipeline" else ("policy", "are")
            raise file.error(
                line,
                f"{key}.name",
                f"{name!r} is a Rasa {kind}; CrowdDesk's {section} {verb} {available} (see docs)",
            )
        if name not in registry:
            raise file.error(
                line, f"{key}.name", f"unknown {section} entry {name!r}; available: {available}"
            )
        if name in built:
            raise file.error(line, f"{key}.name", f"{name!r} is listed twice")
        built[name] = _build_settings(file, registry[name], item, key)
    required = [name for name in registry if name not in OPTIONAL_COMPONENTS and name not in built]
    if required:
        raise file.error(
            key_line(top, section), section, f"missing required entries: {', '.join(required)}"
        )
    return built


def _build_settings(file: YamlFile, settings_class: type, item: Any, key: str) -> Any:
    options = [f for f in fields(settings_class) if not f.metadata.get("internal")]
    reject_unknown_keys(file, item, ["name", *(option.name for option in options)], key)
    hints = get_type_hints(settings_class)
    values: dict[str, Any] = {}
    for option in options:
        if option.name not in item:
            continue
        option_key = f"{key}.{option.name}"
        line = value_line(item, option.name)
        value = _typed_value(file, item[option.name], hints[option.name], option_key, line)
        bounds: Bounds | None = option.metadata.get("bounds")
        problem = bounds.violation(value) if bounds is not None else None
        choices: tuple[str, ...] = option.metadata.get("choices", ())
        if choices and value not in choices:
            problem = f"{value!r} is not available; expected one of: {', '.join(choices)}"
        if problem:
            raise file.error(line, option_key, problem)
        values[option.name] = value
    return settings_class(**values)


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
    expected = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        list[str]: "a list of strings",
    }[hint]
    raise file.error(line, key, f"expected {expected}, got {value!r}")
