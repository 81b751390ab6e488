"""The bot's domain (Rasa 3.x `domain.yml`): intents, entities, slots, responses, actions, forms."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crowddesk.bot.project.yaml_files import (
    FileWarning,
    ProjectFileError,
    YamlFile,
    item_line,
    join_key,
    key_line,
    plain,
    read_yaml,
    reject_unknown_keys,
    require_bool,
    require_mapping,
    require_sequence,
    require_str,
    split_source,
    value_line,
)

SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")
SLOT_MAPPING_TYPES = ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom")
DOMAIN_KEYS = (
    "version",
    "intents",
    "entities",
    "slots",
    "responses",
    "actions",
    "forms",
    "session_config",
    "config",
    "recipe",
    "language",
    "assistant_id",
)
# Keys a Rasa domain may carry that belong to config.yml; a domain's copy of them is ignored.
CONFIG_ONLY_KEYS = ("recipe", "language", "assistant_id")
DOMAIN_CONFIG_KEYS = ("store_entities_as_slots",)
# The slot a form keeps the name of the slot it is asking for in; Rasa adds it to every domain with forms.
REQUESTED_SLOT = "requested_slot"
RESPONSE_KEYS = ("text", "buttons", "image", "custom", "condition", "channel", "metadata")
RETRIEVAL_SEPARATOR = "/"
# The intent of the Helpful / Not helpful buttons on KB answers (bot/dialogue/kb_feedback.py):
# reserved, read from the button payload without NLU, so a project never trains it.
FEEDBACK_INTENT = "kb_feedback"

# Every key a Rasa 3 slot mapping may carry, and the ones each mapping type uses: Rasa accepts
# the others on any type and ignores them, so CrowdDesk loads them with a warning.
MAPPING_KEYS = ("type", "entity", "role", "group", "value", "intent", "not_intent", "action", "conditions")
_MAPPING_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "from_entity": ("entity", "role", "group", "intent", "not_intent"),
    "from_text": ("intent", "not_intent"),
    "from_intent": ("value", "intent", "not_intent"),
    "from_trigger_intent": ("value", "intent", "not_intent"),
    "custom": ("action",),
}
CONDITION_KEYS = ("active_loop", "requested_slot")


@dataclass
class Button:
    title: str
    payload: str

    def as_rasa(self) -> dict[str, Any]:
        return {"title": self.title, "payload": self.payload}


@dataclass
class Response:
    """One variation of a response; `source` is "path:line" of the variation."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    condition: list[dict[str, Any]] | None = None
    custom: dict[str, Any] | None = None
    channel: str | None = None
    source: str = ""

    def has_content(self) -> bool:
        """Rasa can only send a variation that has text, an image or a custom payload."""
        return bool(self.text.strip()) or bool(self.image) or bool(self.custom)

    def as_rasa(self) -> dict[str, Any]:
        optional = {
            "text": self.text or None,
            "buttons": [button.as_rasa() for button in self.buttons] or None,
            "image": self.image,
            "custom": self.custom,
            "condition": self.condition,
            "channel": self.channel,
            "metadata": self.metadata or None,
        }
        return {key: value for key, value in optional.items() if value is not None}


@dataclass
class SlotMapping:
    type: str
    entity: str | None = None
    intent: str | list[str] | None = None
    value: Any = None
    not_intent: str | list[str] | None = None
    role: str | None = None
    group: str | None = None
    conditions: list[dict[str, Any]] | None = None
    action: str | None = None
    source: str = ""

    def as_rasa(self) -> dict[str, Any]:
        optional = {
            "entity": self.entity,
            "intent": self.intent,
            "value": self.value,
            "not_intent": self.not_intent,
            "role": self.role,
            "group": self.group,
            "conditions": self.conditions,
            "action": self.action,
        }
        return {"type": self.type} | {k: v for k, v in optional.items() if v is not None}


@dataclass
class Slot:
    name: str
    type: str
    initial_value: Any
    influence_conversation: bool
    mappings: list[SlotMapping]
    values: list[str] | None
    min_value: float | None = None
    max_value: float | None = None

    def as_rasa(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "type": self.type,
            "initial_value": self.initial_value,
            "influence_conversation": self.influence_conversation,
            "mappings": [mapping.as_rasa() for mapping in self.mappings],
        }
        if self.values is not None:
            info["values"] = list(self.values)
        if self.min_value is not None:
            info["min_value"] = self.min_value
        if self.max_value is not None:
            info["max_value"] = self.max_value
        return info


@dataclass
class SessionConfig:
    session_expiration_time: float = 60
    carry_over_slots_to_new_session: bool = True


@dataclass
class Domain:
    """The merged domain. `sources` maps declarations ("intents.greet", "responses.utter_greet",
    "slots.account", ...) to the "path:line" where they were declared."""

    intents: list[str]
    entities: list[str]
    slots: dict[str, Slot]
    responses: dict[str, list[Response]]
    actions: list[str]
    forms: dict[str, Any]
    session_config: SessionConfig
    path: Path | None
    sources: dict[str, str] = field(default_factory=dict)
    # What a button offering an intent says (`- bot_challenge: {metadata: {title: ...}}`).
    intent_titles: dict[str, str] = field(default_factory=dict)
    # Settings read but ignored, for `data validate` to show.
    warnings: list[FileWarning] = field(default_factory=list, compare=False)

    def intent_title(self, intent: str) -> str | None:
        """A customer-facing title for `intent`: its `metadata.title`, else the `metadata.title`
        of `utter_<intent>` (as FAQ answers have); None when the domain has neither. A response's
        text is the bot's reply, so it would read wrong on a button the customer presses."""
        if intent in self.intent_titles:
            return self.intent_titles[intent]
        titles = (v.metadata.get("title") for v in self.responses.get(f"utter_{intent}", []))
        return next((str(t) for t in titles if isinstance(t, str) and t.strip()), None)

    def retrieval_intents(self) -> list[str]:
        """Base intents (e.g. `faq`) that have `utter_<intent>/<key>` responses."""
        bases = {
            name.removeprefix("utter_").split(RETRIEVAL_SEPARATOR, 1)[0]
            for name in self.responses
            if name.startswith("utter_") and RETRIEVAL_SEPARATOR in name
        }
        return sorted(bases)

    def response_names(self) -> list[str]:
        return list(self.responses)

    def as_rasa_dict(self) -> dict[str, Any]:
        """The domain in the JSON shape Rasa sends to the action server."""
        return {
            "intents": list(self.intents),
            "entities": list(self.entities),
            "slots": {name: slot.as_rasa() for name, slot in self.slots.items()},
            "responses": {
                name: [variation.as_rasa() for variation in variations] for name, variations in self.responses.items()
            },
            "actions": list(self.actions),
            "forms": plain(self.forms),
            "session_config": {
                "session_expiration_time": self.session_config.session_expiration_time,
                "carry_over_slots_to_new_session": (self.session_config.carry_over_slots_to_new_session),
            },
        }


def domain_files(path: Path) -> list[Path]:
    """The YAML files making up a domain: the file itself, or every yml file under a directory."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return [path]


def load_domain(path: Path, *, root: Path | None = None) -> Domain:
    """Load a domain file, or a directory of domain files merged as Rasa does."""
    parts = [load_domain_file(file_path, root=root) for file_path in domain_files(path)]
    return with_implicit_slots(merge_domains(parts, path))


def with_implicit_slots(domain: Domain) -> Domain:
    """`domain` plus the slots Rasa adds by itself: `requested_slot` when there are forms."""
    if not domain.forms or REQUESTED_SLOT in domain.slots:
        return domain
    requested = Slot(REQUESTED_SLOT, "text", None, influence_conversation=False, mappings=[], values=None)
    return replace(domain, slots={**domain.slots, REQUESTED_SLOT: requested})


def load_domain_file(path: Path, *, root: Path | None = None) -> Domain:
    file = read_yaml(path, root)
    content = file.content
    if content is None:
        return merge_domains([], path)
    top = require_mapping(file, content, "domain", 1)
    reject_unknown_keys(file, top, DOMAIN_KEYS, "")
    warnings = _ignored_settings(file, top)
    sources: dict[str, str] = {}
    intents = _parse_names(file, top, "intents", sources)
    entities = _parse_names(file, top, "entities", sources)
    actions = _parse_names(file, top, "actions", sources)
    slots = _parse_slots(file, top.get("slots"), key_line(top, "slots"), sources, warnings)
    responses = parse_responses(file, top.get("responses"), key_line(top, "responses"), "responses")
    sources.update(response_sources(file, top.get("responses")))
    forms = _parse_forms(file, top.get("forms"), key_line(top, "forms"), sources)
    session_config = SessionConfig()
    if "session_config" in top:
        session_config = _parse_session_config(file, top["session_config"], key_line(top, "session_config"))
        sources["session_config"] = file.source(key_line(top, "session_config"))
    return Domain(
        intents=intents,
        entities=entities,
        slots=slots,
        responses=responses,
        actions=actions,
        forms=forms,
        session_config=session_config,
        path=path,
        sources=sources,
        intent_titles=_intent_titles(file, top),
        warnings=warnings,
    )


def _ignored_settings(file: YamlFile, top: Any) -> list[FileWarning]:
    """Warnings for the domain's copies of config.yml keys and its `config:` block."""
    warnings = [
        file.warning(key_line(top, key), key, "belongs in config.yml; ignored in the domain")
        for key in CONFIG_ONLY_KEYS
        if key in top
    ]
    if top.get("config") is not None:
        settings = require_mapping(file, top["config"], "config", key_line(top, "config"))
        reject_unknown_keys(file, settings, DOMAIN_CONFIG_KEYS, "config")
        for name in settings:
            require_bool(file, settings[name], f"config.{name}", value_line(settings, name))
            warnings.append(
                file.warning(
                    key_line(settings, name),
                    f"config.{name}",
                    "ignored: slots are filled only through their `mappings`, as in Rasa 3",
                )
            )
    return warnings


def merge_domains(parts: list[Domain], path: Path | None) -> Domain:
    """Union the name lists; a slot, response, form or session_config defined twice is an error."""
    merged = Domain([], [], {}, {}, [], {}, SessionConfig(), path, {})
    for part in parts:
        _merge_into(merged, part)
    return merged


def _merge_into(merged: Domain, part: Domain) -> None:
    for section in ("slots", "responses", "forms"):
        target: dict[str, Any] = getattr(merged, section)
        for name, value in getattr(part, section).items():
            if name in target:
                raise _duplicate_error(merged, part, f"{section}.{name}")
            target[name] = value
    if "session_config" in part.sources:
        if "session_config" in merged.sources:
            raise _duplicate_error(merged, part, "session_config")
        merged.session_config = part.session_config
    for section in ("intents", "entities", "actions"):
        names: list[str] = getattr(merged, section)
        names.extend(name for name in getattr(part, section) if name not in names)
    for key, source in part.sources.items():
        merged.sources.setdefault(key, source)
    for intent, title in part.intent_titles.items():
        merged.intent_titles.setdefault(intent, title)
    merged.warnings.extend(part.warnings)


def _duplicate_error(merged: Domain, part: Domain, key: str) -> ProjectFileError:
    path, line = split_source(part.sources.get(key, str(part.path)))
    return ProjectFileError(
        Path(path), line, key, f"already defined at {merged.sources.get(key, 'another domain file')}"
    )


def with_responses(domain: Domain, responses: dict[str, list[Response]], sources: dict[str, str]) -> Domain:
    """A copy of `domain` with extra responses (e.g. retrieval answers kept in data files);
    `sources` must hold "responses.<name>" for each of them."""
    response_keys = [f"responses.{name}" for name in responses]
    extra = Domain([], [], {}, responses, [], {}, SessionConfig(), None, {k: sources[k] for k in response_keys})
    merged = replace(domain, responses=dict(domain.responses), sources=dict(domain.sources))
    _merge_into(merged, extra)
    return merged


def _parse_names(file: YamlFile, top: Any, section: str, sources: dict[str, str]) -> list[str]:
    """Intents, entities and actions: plain names or `{name: {options}}` (options are Rasa's)."""
    if top.get(section) is None:
        return []
    items = require_sequence(file, top[section], section, key_line(top, section))
    names: list[str] = []
    for index, item in enumerate(items):
        line = item_line(items, index)
        key = f"{section}[{index}]"
        if isinstance(item, dict):
            if len(item) != 1:
                raise file.error(line, key, "expected a name or a single `name: {options}` mapping")
            item = next(iter(item))
        name = require_str(file, item, key, line)
        if name in names:
            raise file.error(line, f"{section}.{name}", "listed twice")
        names.append(name)
        sources[f"{section}.{name}"] = file.source(line)
    return names


def _intent_titles(file: YamlFile, top: Any) -> dict[str, str]:
    """`metadata.title` of intents declared as `name: {metadata: {title: ...}}`. Rasa keeps
    intent properties it doesn't know, so such a domain still loads in Rasa."""
    titles: dict[str, str] = {}
    for item in top.get("intents") or []:
        if not isinstance(item, dict) or len(item) != 1:
            continue  # plain names; malformed items were reported by _parse_names
        name, options = next(iter(item.items()))
        if not isinstance(options, dict) or "metadata" not in options:
            continue
        key = f"intents.{name}.metadata"
        metadata = require_mapping(file, options["metadata"], key, key_line(options, "metadata"))
        if "title" in metadata:
            titles[str(name)] = require_str(file, metadata["title"], f"{key}.title", value_line(metadata, "title"))
    return titles


def parse_responses(file: YamlFile, node: Any, line: int | None, key_prefix: str) -> dict[str, list[Response]]:
    """Parse a `responses:` mapping (shared by domain files and data files)."""
    if node is None:
        return {}
    mapping = require_mapping(file, node, key_prefix, line)
    responses: dict[str, list[Response]] = {}
    for name, variations in mapping.items():
        key = join_key(key_prefix, str(name))
        items = require_sequence(file, variations, key, key_line(mapping, name))
        if not items:
            raise file.error(key_line(mapping, name), key, "response has no variations")
        responses[str(name)] = [
            _parse_variation(file, item, item_line(items, index), f"{key}[{index}]") for index, item in enumerate(items)
        ]
    return responses


def response_sources(file: YamlFile, node: Any) -> dict[str, str]:
    if not isinstance(node, dict):
        return {}
    return {f"responses.{name}": file.source(key_line(node, name)) for name in node}


def _parse_variation(file: YamlFile, node: Any, line: int | None, key: str) -> Response:
    variation = require_mapping(file, node, key, line)
    reject_unknown_keys(file, variation, RESPONSE_KEYS, key)
    text = variation.get("text", "")
    if not isinstance(text, str):
        raise file.error(value_line(variation, "text"), f"{key}.text", "expected a string")
    buttons = _parse_buttons(file, variation, key)
    image = variation.get("image")
    if image is not None:
        image = require_str(file, image, f"{key}.image", value_line(variation, "image"))
    channel = variation.get("channel")
    if channel is not None:
        channel = require_str(file, channel, f"{key}.channel", value_line(variation, "channel"))
    custom = _optional_mapping(file, variation, "custom", key)
    metadata = _optional_mapping(file, variation, "metadata", key) or {}
    condition = None
    if variation.get("condition") is not None:
        condition = plain(
            require_sequence(file, variation["condition"], f"{key}.condition", key_line(variation, "condition"))
        )
    return Response(
        text=str(text),
        buttons=buttons,
        metadata=metadata,
        image=image,
        condition=condition,
        custom=custom,
        channel=channel,
        source=file.source(line),
    )


def _parse_buttons(file: YamlFile, variation: Any, key: str) -> list[Button]:
    if variation.get("buttons") is None:
        return []
    items = require_sequence(file, variation["buttons"], f"{key}.buttons", key_line(variation, "buttons"))
    buttons: list[Button] = []
    for index, item in enumerate(items):
        button_key = f"{key}.buttons[{index}]"
        line = item_line(items, index)
        button = require_mapping(file, item, button_key, line)
        reject_unknown_keys(file, button, ("title", "payload"), button_key)
        buttons.append(
            Button(
                title=require_str(file, button.get("title"), f"{button_key}.title", line),
                payload=require_str(file, button.get("payload"), f"{button_key}.payload", line),
            )
        )
    return buttons


def _optional_mapping(file: YamlFile, parent: Any, name: str, key: str) -> dict[str, Any] | None:
    if parent.get(name) is None:
        return None
    return plain(require_mapping(file, parent[name], f"{key}.{name}", key_line(parent, name)))


def _parse_slots(
    file: YamlFile, node: Any, line: int | None, sources: dict[str, str], warnings: list[FileWarning]
) -> dict[str, Slot]:
    if node is None:
        return {}
    mapping = require_mapping(file, node, "slots", line)
    slots: dict[str, Slot] = {}
    for name, definition in mapping.items():
        slot_line = key_line(mapping, name)
        slots[str(name)] = _parse_slot(file, str(name), definition, slot_line, warnings)
        sources[f"slots.{name}"] = file.source(slot_line)
    return slots


def _parse_slot(file: YamlFile, name: str, node: Any, line: int | None, warnings: list[FileWarning]) -> Slot:
    key = f"slots.{name}"
    definition = require_mapping(file, node, key, line)
    reject_unknown_keys(
        file,
        definition,
        (
            "type",
            "initial_value",
            "influence_conversation",
            "mappings",
            "values",
            "min_value",
            "max_value",
        ),
        key,
    )
    slot_type = definition.get("type")
    if slot_type not in SLOT_TYPES:
        raise file.error(
            value_line(definition, "type"),
            f"{key}.type",
            f"unknown slot type {slot_type!r}; expected one of: {', '.join(SLOT_TYPES)}",
        )
    influence = slot_type != "any"
    if "influence_conversation" in definition:
        influence = require_bool(
            file,
            definition["influence_conversation"],
            f"{key}.influence_conversation",
            value_line(definition, "influence_conversation"),
        )
        if influence and slot_type == "any":
            raise file.error(
                value_line(definition, "influence_conversation"),
                f"{key}.influence_conversation",
                "slots of type 'any' cannot influence the conversation",
            )
    values = _parse_slot_values(file, definition, slot_type, key)
    min_value, max_value = _parse_slot_range(file, definition, slot_type, key)
    if "mappings" not in definition:
        raise file.error(
            line,
            f"{key}.mappings",
            "slot has no mappings (Rasa 3 requires them; use `- type: custom` if an action sets it)",
        )
    mappings_node = require_sequence(file, definition["mappings"], f"{key}.mappings", key_line(definition, "mappings"))
    mappings = [
        _parse_slot_mapping(file, item, item_line(mappings_node, index), f"{key}.mappings[{index}]", warnings)
        for index, item in enumerate(mappings_node)
    ]
    initial_value = plain(definition.get("initial_value"))
    _check_initial_value(file, definition, slot_type, values, initial_value, key)
    return Slot(
        name=name,
        type=slot_type,
        initial_value=initial_value,
        influence_conversation=influence,
        mappings=mappings,
        values=values,
        min_value=min_value,
        max_value=max_value,
    )


def _parse_slot_values(file: YamlFile, definition: Any, slot_type: str, key: str) -> list[str] | None:
    if slot_type != "categorical":
        if "values" in definition:
            raise file.error(key_line(definition, "values"), f"{key}.values", "only categorical slots have values")
        return None
    line = key_line(definition, "values")
    items = require_sequence(file, definition.get("values"), f"{key}.values", line)
    if not items:
        raise file.error(line, f"{key}.values", "a categorical slot needs at least one value")
    return [str(value) for value in items]


def _parse_slot_range(file: YamlFile, definition: Any, slot_type: str, key: str) -> tuple[float | None, float | None]:
    bounds: list[float | None] = []
    for name in ("min_value", "max_value"):
        value = definition.get(name)
        if value is not None and (slot_type != "float" or not _is_number(value)):
            raise file.error(
                value_line(definition, name),
                f"{key}.{name}",
                "only float slots have a numeric min/max value",
            )
        bounds.append(float(value) if value is not None else None)
    return bounds[0], bounds[1]


def _check_initial_value(
    file: YamlFile, definition: Any, slot_type: str, values: list[str] | None, initial: Any, key: str
) -> None:
    if initial is None:
        return
    valid = {
        "text": isinstance(initial, str),
        "bool": isinstance(initial, bool),
        "categorical": values is not None and str(initial) in values,
        "float": _is_number(initial),
        "list": isinstance(initial, list),
        "any": True,
    }[slot_type]
    if not valid:
        raise file.error(
            value_line(definition, "initial_value"),
            f"{key}.initial_value",
            f"{initial!r} is not a valid initial value for a {slot_type} slot",
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_slot_mapping(
    file: YamlFile, node: Any, line: int | None, key: str, warnings: list[FileWarning]
) -> SlotMapping:
    mapping = require_mapping(file, node, key, line)
    mapping_type = mapping.get("type")
    if mapping_type not in SLOT_MAPPING_TYPES:
        raise file.error(
            line,
            f"{key}.type",
            f"unknown slot mapping type {mapping_type!r}; expected one of: {', '.join(SLOT_MAPPING_TYPES)}",
        )
    reject_unknown_keys(file, mapping, MAPPING_KEYS, key)
    used = ("type", "conditions", *_MAPPING_TYPE_KEYS[mapping_type])
    warnings.extend(
        file.warning(key_line(mapping, name), f"{key}.{name}", f"ignored: a {mapping_type} mapping does not use it")
        for name in mapping
        if name not in used
    )
    if mapping_type == "from_entity" and "entity" not in mapping:
        raise file.error(line, f"{key}.entity", "a from_entity mapping needs an entity")
    if mapping_type in ("from_intent", "from_trigger_intent") and "value" not in mapping:
        raise file.error(line, f"{key}.value", f"a {mapping_type} mapping needs a value")
    texts = {
        name: require_str(file, mapping[name], f"{key}.{name}", key_line(mapping, name))
        for name in ("entity", "role", "group", "action")
        if mapping.get(name) is not None
    }
    conditions = None
    if mapping.get("conditions") is not None:
        conditions = _mapping_conditions(file, mapping, f"{key}.conditions")
    return SlotMapping(
        type=mapping_type,
        entity=texts.get("entity"),
        intent=_intent_filter(file, mapping, "intent", key),
        value=plain(mapping.get("value")),
        not_intent=_intent_filter(file, mapping, "not_intent", key),
        role=texts.get("role"),
        group=texts.get("group"),
        conditions=conditions,
        action=texts.get("action"),
        source=file.source(line),
    )


def _mapping_conditions(file: YamlFile, mapping: Any, key: str) -> list[dict[str, Any]]:
    """`conditions:` of a slot mapping: each a form that must be active (`active_loop`, null for
    none) and optionally the slot it must be asking for (`requested_slot`)."""
    items = require_sequence(file, mapping["conditions"], key, key_line(mapping, "conditions"))
    conditions: list[dict[str, Any]] = []
    for index, node in enumerate(items):
        item_key = f"{key}[{index}]"
        condition = require_mapping(file, node, item_key, item_line(items, index))
        reject_unknown_keys(file, condition, CONDITION_KEYS, item_key)
        for name in CONDITION_KEYS:
            if condition.get(name) is not None:
                require_str(file, condition[name], f"{item_key}.{name}", value_line(condition, name))
        conditions.append(plain(condition))
    return conditions


def _intent_filter(file: YamlFile, mapping: Any, name: str, key: str) -> str | list[str] | None:
    value = mapping.get(name)
    if value is None:
        return None
    line = key_line(mapping, name)
    if isinstance(value, list):
        return [require_str(file, item, f"{key}.{name}[{index}]", line) for index, item in enumerate(value)]
    return require_str(file, value, f"{key}.{name}", line)


def _parse_forms(file: YamlFile, node: Any, line: int | None, sources: dict[str, str]) -> dict[str, Any]:
    if node is None:
        return {}
    mapping = require_mapping(file, node, "forms", line)
    forms: dict[str, Any] = {}
    for name, definition in mapping.items():
        form_line = key_line(mapping, name)
        forms[str(name)] = plain(require_mapping(file, definition, f"forms.{name}", form_line))
        sources[f"forms.{name}"] = file.source(form_line)
    return forms


def _parse_session_config(file: YamlFile, node: Any, line: int | None) -> SessionConfig:
    mapping = require_mapping(file, node, "session_config", line)
    reject_unknown_keys(file, mapping, ("session_expiration_time", "carry_over_slots_to_new_session"), "session_config")
    config = SessionConfig()
    if "session_expiration_time" in mapping:
        minutes = mapping["session_expiration_time"]
        if not _is_number(minutes) or minutes < 0:
            raise file.error(
                value_line(mapping, "session_expiration_time"),
                "session_config.session_expiration_time",
                f"expected a number of minutes >= 0, got {minutes!r}",
            )
        config.session_expiration_time = float(minutes)
    if "carry_over_slots_to_new_session" in mapping:
        config.carry_over_slots_to_new_session = require_bool(
            file,
            mapping["carry_over_slots_to_new_session"],
            "session_config.carry_over_slots_to_new_session",
            value_line(mapping, "carry_over_slots_to_new_session"),
        )
    return config
