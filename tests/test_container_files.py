"""The Dockerfile and compose.yaml stay in step with the code: what they copy exists, what they
install is what pyproject.toml declares, their commands are ones `crowddesk` accepts, and the
variables they set are the ones CrowdDesk reads. (No container is built here: the test machines
have no container runtime; these are the mistakes a code change makes in them.)"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from ruamel.yaml import YAML

from crowddesk.bot.cli.main import build_parser
from crowddesk.bot.cli.verbs import SERVER_PORT
from crowddesk.bot.project.endpoints import ACTION_ENDPOINT_ENV, DATABASE_URL_ENV, REDIS_URL_ENV, load_endpoints
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.action_server import DEFAULT_PORT as ACTIONS_PORT
from crowddesk.bot.server.api_access import TOKEN_ENV
from crowddesk.bot.server.workers import check_shared_stores

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def arg_defaults() -> dict[str, str]:
    return dict(arguments.split("=", 1) for keyword, arguments in instructions() if keyword == "ARG")


def expanded(text: str) -> str:
    defaults = arg_defaults()
    return re.sub(r"\$\{(\w+)\}", lambda match: defaults[match.group(1)], text)


def compose() -> dict[str, Any]:
    return YAML(typ="safe").load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def crowddesk_arguments(command: list[str]) -> Any:
    assert command[0] == "crowddesk"
    return build_parser().parse_args(command[1:])


def test_the_image_copies_every_code_folder_and_the_project_files_that_exist() -> None:
    sources = set()
    for keyword, arguments in instructions():
        if keyword == "COPY" and "--from" not in arguments:
            sources.update(Path(expanded(part)).as_posix() for part in shlex.split(arguments)[:-1])
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    code_folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    assert code_folders <= sources, f"a package the wheel needs is not copied: {code_folders - sources}"
    assert {"config.yml", "domain.yml", "data", "actions"} <= {Path(source).name for source in sources}


def test_the_image_installs_declared_extras_on_a_supported_python() -> None:
    installs = [arguments for keyword, arguments in instructions() if keyword == "RUN" and "pip install" in arguments]
    extras = {extra for install in installs for extra in re.findall(r"\.\[(\w+)\]", install)}
    assert extras and extras <= set(PYPROJECT["project"]["optional-dependencies"])
    python = arg_defaults()["PYTHON"]
    assert f"{python}.0" in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_the_image_serves_on_the_server_port_with_a_health_check() -> None:
    by_keyword: dict[str, list[str]] = {}
    for keyword, arguments in instructions():
        by_keyword.setdefault(keyword, []).append(arguments)
    assert by_keyword["EXPOSE"] == [str(SERVER_PORT)]
    arguments = crowddesk_arguments(json.loads(by_keyword["CMD"][-1]))
    assert arguments.command == "run" and arguments.host == "0.0.0.0" and (arguments.port or SERVER_PORT) == SERVER_PORT
    assert f"127.0.0.1:{SERVER_PORT}/health" in by_keyword["HEALTHCHECK"][0]
    assert not any(TOKEN_ENV in line or "PASSWORD" in line for line in by_keyword.get("ENV", []))


def test_compose_runs_two_workers_on_postgres_and_redis_that_crowddesk_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    server = services["crowddesk"]
    arguments = crowddesk_arguments(server["command"])
    assert arguments.command == "run" and arguments.workers >= 2 and arguments.host == "0.0.0.0"
    assert server["ports"] == [f"{SERVER_PORT}:{SERVER_PORT}"]
    environment = server["environment"]
    assert set(environment) == {DATABASE_URL_ENV, REDIS_URL_ENV, ACTION_ENDPOINT_ENV, TOKEN_ENV}
    # Secrets are references to the deployer's environment, never values in the file.
    assert VARIABLE.fullmatch(environment[TOKEN_ENV])
    assert VARIABLE.fullmatch(services["postgres"]["environment"]["POSTGRES_PASSWORD"])
    resolved = {name: VARIABLE.sub("secret", value) for name, value in environment.items()}
    endpoints = load_endpoints(ROOT / "endpoints.yml", root=ROOT, environ=resolved)
    assert endpoints.database_url is not None and endpoints.database_url.startswith("postgresql+psycopg://")
    assert endpoints.lock_store is not None and endpoints.lock_store.url.startswith("redis://redis:")
    assert endpoints.action_endpoint_url == f"http://actions:{ACTIONS_PORT}/webhook"
    for name, value in resolved.items():
        monkeypatch.setenv(name, value)
    check_shared_stores(load_project(ROOT), None, arguments.workers)  # what `--workers 2` checks before starting
    assert crowddesk_arguments(services["actions"]["command"]).target == "actions"
    for dependency in ("postgres", "redis"):
        assert server["depends_on"][dependency] == {"condition": "service_healthy"}
        assert services[dependency]["healthcheck"]["test"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".crowddesk", "models"} <= ignored
