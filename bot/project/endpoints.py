"""Where the action server, the conversation database and the lock store live (Rasa's
`endpoints.yml`), and how long delivery bookkeeping (`delivery:`) and conversations (`retention:`)
are kept, CrowdDesk's own."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from crowddesk.bot.project.yaml_files import (
    ProjectFileError,
    YamlFile,
    key_line,
    read_yaml,
    reject_unknown_keys,
    require_mapping,
    value_line,
)

ACTION_ENDPOINT_ENV = "CROWDDESK_ACTION_ENDPOINT"
DATABASE_URL_ENV = "CROWDDESK_DATABASE_URL"
REDIS_URL_ENV = "CROWDDESK_REDIS_URL"
ENDPOINT_KEYS = ("version", "action_endpoint", "tracker_store", "lock_store", "delivery", "retention")
TRACKER_STORE_KEYS = ("type", "url", "host", "port", "dialect", "db", "username", "password", "query")
# Rasa's RedisLockStore keys, and how long a turn's lock outlives a process that stopped renewing it.
LOCK_STORE_KEYS = ("type", "url", "port", "db", "password", "use_ssl", "key_prefix", "lock_lifetime")
DEFAULT_LOCK_LIFETIME_SECONDS = 10
DEFAULT_KEY_PREFIX = "crowddesk"
DEFAULT_SQLITE_DB = "crowddesk.db"
DEFAULT_RETENTION_DAYS = 7
# SQLAlchemy's bare "postgresql" means psycopg2; CrowdDesk ships psycopg 3.
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingEnvironmentVariable(ProjectFileError):
    """A project file (endpoints.yml, credentials.yml) refers to `${NAME}` but NAME is not set."""

    def __init__(self, path: Path, line: int | None, key: str, variable: str) -> None:
        self.variable = variable
        super().__init__(path, line, key, f"environment variable {variable!r} is not set")


@dataclass(frozen=True)
class LockStore:
    """The Redis that several server processes share: turn locks and live pushes."""

    url: str
    key_prefix: str = DEFAULT_KEY_PREFIX
    lock_lifetime_seconds: int = DEFAULT_LOCK_LIFETIME_SECONDS

    def __repr__(self) -> str:
        return (
            f"LockStore(url={masked_redis_url(self.url)!r}, key_prefix={self.key_prefix!r}, "
            f"lock_lifetime_seconds={self.lock_lifetime_seconds!r})"
        )


@dataclass(frozen=True)
class Endpoints:
    action_endpoint_url: str | None = None
    database_url: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    """Delivered outbox rows and inbound delivery keys older than this are deleted."""
    conversations_days: int | None = None
    """Conversations with no activity for this long are erased; None keeps them."""
    lock_store: LockStore | None = None
    """None: turns are locked in the process (one server process)."""

    @property
    def conversations_retention(self) -> timedelta | None:
        """`conversations_days` as the purge takes it."""
        return None if self.conversations_days is None else timedelta(days=self.conversations_days)

    def __repr__(self) -> str:
        # The database URL usually carries a password; keep it out of logs.
        return (
            f"Endpoints(action_endpoint_url={self.action_endpoint_url!r}, "
            f"database_url={masked_database_url(self.database_url)!r}, "
            f"retention_days={self.retention_days!r}, conversations_days={self.conversations_days!r}, "
            f"lock_store={self.lock_store!r})"
        )


def masked_database_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database url>"


def masked_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def load_endpoints(path: Path, *, root: Path | None = None, environ: Mapping[str, str] | None = None) -> Endpoints:
    """Read endpoints.yml (missing file = nothing configured); the CROWDDESK_* variables win."""
    env = os.environ if environ is None else environ
    action_url: str | None = None
    database_url: str | None = None
    retention_days = DEFAULT_RETENTION_DAYS
    conversations_days = None
    lock_store = None
    if path.exists():
        file = read_yaml(path, root)
        if file.content is not None:
            top = require_mapping(file, file.content, "endpoints", 1)
            reject_unknown_keys(file, top, ENDPOINT_KEYS, "")
            action_url = _action_endpoint(file, top, env)
            database_url = _tracker_store_url(file, top, env)
            retention_days = _retention_days(file, top, env)
            conversations_days = _conversations_days(file, top, env)
            lock_store = _lock_store(file, top, env)
    redis_url = env.get(REDIS_URL_ENV)
    if redis_url:
        lock_store = replace(lock_store, url=redis_url) if lock_store else LockStore(redis_url)
    return Endpoints(
        action_endpoint_url=env.get(ACTION_ENDPOINT_ENV) or action_url,
        database_url=env.get(DATABASE_URL_ENV) or database_url,
        retention_days=retention_days,
        conversations_days=conversations_days,
        lock_store=lock_store,
    )


def _action_endpoint(file: YamlFile, top: Any, env: Mapping[str, str]) -> str | None:
    if top.get("action_endpoint") is None:
        return None
    section = require_mapping(file, top["action_endpoint"], "action_endpoint", key_line(top, "action_endpoint"))
    reject_unknown_keys(file, section, ("url",), "action_endpoint")
    url = _text(file, section, "url", "action_endpoint", env)
    if url is None:
        raise file.error(key_line(top, "action_endpoint"), "action_endpoint.url", "missing url")
    if not url.startswith(("http://", "https://")):
        raise file.error(value_line(section, "url"), "action_endpoint.url", f"expected an http(s) URL, got {url!r}")
    return url


def _retention_days(file: YamlFile, top: Any, env: Mapping[str, str]) -> int:
    if top.get("delivery") is None:
        return DEFAULT_RETENTION_DAYS
    section = require_mapping(file, top["delivery"], "delivery", key_line(top, "delivery"))
    reject_unknown_keys(file, section, ("retention_days",), "delivery")
    days = _days(file, section, "retention_days", "delivery", env)
    return DEFAULT_RETENTION_DAYS if days is None else days


def _conversations_days(file: YamlFile, top: Any, env: Mapping[str, str]) -> int | None:
    if top.get("retention") is None:
        return None
    section = require_mapping(file, top["retention"], "retention", key_line(top, "retention"))
    reject_unknown_keys(file, section, ("conversations_days",), "retention")
    return _days(file, section, "conversations_days", "retention", env)


def _days(file: YamlFile, section: Any, name: str, key_prefix: str, env: Mapping[str, str]) -> int | None:
    """A setting that is a whole number of days, at least 1; None when it is not given."""
    return _whole_number(file, section, name, key_prefix, env, unit="days")


def _lock_store(file: YamlFile, top: Any, env: Mapping[str, str]) -> LockStore | None:
    if top.get("lock_store") is None:
        return None
    section = require_mapping(file, top["lock_store"], "lock_store", key_line(top, "lock_store"))
    reject_unknown_keys(file, section, LOCK_STORE_KEYS, "lock_store")
    store_type = (_text(file, section, "type", "lock_store", env) or "").lower()
    if store_type == "in_memory":
        return None
    if store_type != "redis":
        raise file.error(
            value_line(section, "type"),
            "lock_store.type",
            f"expected `redis` (several server processes) or `in_memory` (one), got {store_type or None!r}",
        )
    lifetime = _whole_number(file, section, "lock_lifetime", "lock_store", env, unit="seconds")
    return LockStore(
        url=_redis_url(file, section, env),
        key_prefix=_text(file, section, "key_prefix", "lock_store", env) or DEFAULT_KEY_PREFIX,
        lock_lifetime_seconds=DEFAULT_LOCK_LIFETIME_SECONDS if lifetime is None else lifetime,
    )


def _redis_url(file: YamlFile, section: Any, env: Mapping[str, str]) -> str:
    """Like Rasa, `url` is the server's host name; a complete `redis://` URL is taken too."""
    url = _text(file, section, "url", "lock_store", env) or "localhost"
    if "://" in url:
        extra = [name for name in ("port", "db", "password", "use_ssl") if name in section]
        if extra:
            raise file.error(
                key_line(section, extra[0]),
                f"lock_store.{extra[0]}",
                "give either a complete `url` or its parts (url as the host, port, db, ...), not both",
            )
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise file.error(value_line(section, "url"), "lock_store.url", "expected a redis:// or rediss:// URL")
        return url
    port = _whole_number(file, section, "port", "lock_store", env) or 6379
    db = _whole_number(file, section, "db", "lock_store", env, minimum=0) or 0
    password = _text(file, section, "password", "lock_store", env)
    use_ssl = section.get("use_ssl") is True
    credentials = f":{quote(password, safe='')}@" if password else ""
    return f"{'rediss' if use_ssl else 'redis'}://{credentials}{url}:{port}/{db}"


def _whole_number(
    file: YamlFile,
    section: Any,
    name: str,
    key_prefix: str,
    env: Mapping[str, str],
    *,
    minimum: int = 1,
    unit: str = "",
) -> int | None:
    """A whole-number setting (of `unit`), at least `minimum`; None when it is not given."""
    text = _text(file, section, name, key_prefix, env)
    if text is None:
        return None
    if not text.isdigit() or int(text) < minimum:
        of_unit = f" of {unit}" if unit else ""
        raise file.error(
            value_line(section, name),
            f"{key_prefix}.{name}",
            f"expected a whole number{of_unit}, at least {minimum}, got {text!r}",
        )
    return int(text)


def _tracker_store_url(file: YamlFile, top: Any, env: Mapping[str, str]) -> str | None:
    if top.get("tracker_store") is None:
        return None
    store = require_mapping(file, top["tracker_store"], "tracker_store", key_line(top, "tracker_store"))
    reject_unknown_keys(file, store, TRACKER_STORE_KEYS, "tracker_store")
    store_type = _text(file, store, "type", "tracker_store", env)
    if store_type is None or store_type.lower() != "sql":
        raise file.error(
            value_line(store, "type"),
            "tracker_store.type",
            f"only `type: sql` is supported, got {store_type!r}",
        )
    url = _text(file, store, "url", "tracker_store", env)
    # Like Rasa, `url` is either a complete database URL or just the server's host name.
    if url is not None and "://" in url:
        extra = [name for name in ("host", "port", "dialect", "db", "username", "password", "query") if name in store]
        if extra:
            raise file.error(
                key_line(store, extra[0]),
                f"tracker_store.{extra[0]}",
                "give either a complete `url` or its parts (dialect, host, db, ...), not both",
            )
        try:
            return make_url(url).render_as_string(hide_password=False)
        except ArgumentError as error:
            raise file.error(value_line(store, "url"), "tracker_store.url", "not a valid database URL") from error
    return _assembled_url(file, store, url, env)


def _assembled_url(file: YamlFile, store: Any, url_host: str | None, env: Mapping[str, str]) -> str:
    host = _text(file, store, "host", "tracker_store", env)
    if url_host is not None and host is not None:
        raise file.error(key_line(store, "host"), "tracker_store.host", "give the host as `url` or `host`, not both")
    dialect = _text(file, store, "dialect", "tracker_store", env) or "sqlite"
    database = _text(file, store, "db", "tracker_store", env) or DEFAULT_SQLITE_DB
    if dialect == "sqlite" and database != ":memory:" and not Path(database).is_absolute():
        # A relative SQLite file belongs to the project, not to whatever directory the bot runs from.
        database = str(file.path.parent / database)
    port_text = _text(file, store, "port", "tracker_store", env)
    if port_text is not None and not port_text.isdigit():
        raise file.error(value_line(store, "port"), "tracker_store.port", f"expected a port number, got {port_text!r}")
    query: dict[str, str] = {}
    if store.get("query") is not None:
        query_node = require_mapping(file, store["query"], "tracker_store.query", key_line(store, "query"))
        query = {str(name): _text(file, query_node, name, "tracker_store.query", env) or "" for name in query_node}
    return URL.create(
        drivername=_DRIVERS.get(dialect, dialect),
        username=_text(file, store, "username", "tracker_store", env),
        password=_text(file, store, "password", "tracker_store", env),
        host=url_host or host,
        port=int(port_text) if port_text is not None else None,
        database=database,
        query=query,
    ).render_as_string(hide_password=False)


def _text(file: YamlFile, mapping: Any, name: str, key_prefix: str, env: Mapping[str, str]) -> str | None:
    """A scalar setting as text, with `${VAR}` replaced from the environment."""
    value = mapping.get(name)
    if value is None:
        return None
    key = f"{key_prefix}.{name}"
    line = value_line(mapping, name)
    if isinstance(value, (dict, list, bool)):
        # No value in the message: this may be the password.
        raise file.error(line, key, "expected a single text or number value")

    return expand_env(file, line, key, str(value), env)


def expand_env(file: YamlFile, line: int | None, key: str, text: str, env: Mapping[str, str]) -> str:
    """`text` with every `${VAR}` replaced from `env`; a missing VAR names file, line and key."""

    def substitute(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in env:
            raise MissingEnvironmentVariable(file.display_path, line, key, variable)
        return env[variable]

    return _ENV_REFERENCE.sub(substitute, text)
