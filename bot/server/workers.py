"""`crowddesk run --workers N`: N server processes on one port, each a whole CrowdDesk server.

They share what must be shared through PostgreSQL (conversations, tickets, the outbox, the
knowledge base) and Redis (turn locks, live pushes to web chat widgets); `check_shared_stores`
refuses to start them on SQLite or without a lock store. uvicorn starts the processes and
restarts one that dies; each builds its app with `app_from_environment`, from settings the
parent leaves in the environment (secrets stay in their own variables, never in a command line).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from crowddesk.bot.project.endpoints import DATABASE_URL_ENV, REDIS_URL_ENV
from crowddesk.bot.project.loading import Project
from crowddesk.bot.server.api_access import JWT_SECRET_ENV, TOKEN_ENV, ApiAccess
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.server.database import database_url_for
from crowddesk.errors import Rejected
from crowddesk.nlu.encoders import use_serving_threads

SETTINGS_ENV = "CROWDDESK_WORKER_SETTINGS"
FACTORY = "crowddesk.bot.server.workers:app_from_environment"


class WorkersNeedSharedStores(Rejected):
    """Several server processes were asked for on stores only one process can use."""


@dataclass(frozen=True)
class WorkerSettings:
    """What each worker process assembles its bot from (no secrets: those travel as variables)."""

    project: str
    model: str | None
    credentials: str | None
    jwt_method: str


def check_shared_stores(project: Project, database_url: str | None, workers: int) -> None:
    """Refuse `workers` > 1 unless the database is PostgreSQL and a lock store (Redis) is set."""
    url = database_url_for(project, database_url)
    if url.startswith("sqlite"):
        raise WorkersNeedSharedStores(
            f"--workers {workers} needs PostgreSQL: the embedded SQLite database lets one process write at "
            f"a time, and its index lives on one machine. Set {DATABASE_URL_ENV} (or endpoints.yml "
            "tracker_store) to a postgresql:// URL, or run one worker."
        )
    if project.endpoints.lock_store is None:
        raise WorkersNeedSharedStores(
            f"--workers {workers} needs a lock store (Redis), so that one conversation's messages are "
            f"answered one at a time whichever process receives them. Set {REDIS_URL_ENV} (or endpoints.yml "
            "lock_store: {type: redis, url: ...}), or run one worker."
        )


def hand_to_workers(settings: WorkerSettings, database_url: str | None, access: ApiAccess) -> None:
    """Leave the settings for the worker processes, which inherit this environment."""
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    secrets = {DATABASE_URL_ENV: database_url, TOKEN_ENV: access.token, JWT_SECRET_ENV: access.jwt_secret}
    for variable, value in secrets.items():
        if value:
            os.environ[variable] = value


def app_from_environment() -> FastAPI:
    """One worker's app (uvicorn calls this in each process it starts)."""
    settings = WorkerSettings(**json.loads(os.environ[SETTINGS_ENV]))
    use_serving_threads()
    bot = assemble(
        Path(settings.project),
        model_dir=Path(settings.model) if settings.model else None,
        credentials=Path(settings.credentials) if settings.credentials else None,
    )
    return create_app(bot, ApiAccess.configured(jwt_method=settings.jwt_method))
