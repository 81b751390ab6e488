"""What people see when CrowdDesk refuses: one family of errors, one status code per member on the
HTTP API, one exit code per member on the command line; and no exception class outside the family."""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crowddesk.bot.cli.main import main
from crowddesk.bot.cli.output import EXIT_NOT_FOUND, EXIT_REFUSED, exit_code_for
from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.api import router as desk_router
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.services import provide
from crowddesk.errors import Conflict, CrowdDeskError, Forbidden, Invalid, NotFound, Rejected, TooLarge
from tests.test_tickets import open_ticket

PACKAGES = ("errors", "storage", "connectors", "nlu", "knowledge_base", "bot")


@pytest.fixture
def desk_api(db_engine: Engine) -> tuple[TestClient, str, dict[str, str]]:
    """The agent API on its own app with the error handlers; (client, a queued ticket, ana's headers)."""
    agents = AgentDirectory(db_engine)
    app = FastAPI()
    install_error_handlers(app)
    provide(app, agents, TicketDesk(db_engine), ConversationStore(db_engine))
    app.include_router(desk_router)
    agents.add("ana", "Ana")
    ticket_id = open_ticket(ConversationStore(db_engine))
    return TestClient(app), ticket_id, {"Authorization": f"Bearer {agents.issue_token('ana')}"}


def test_the_desk_api_answers_each_family_with_its_status_and_message(desk_api) -> None:
    client, ticket_id, ana = desk_api
    missing = client.post("/desk/api/tickets/nope/claim", headers=ana)
    assert (missing.status_code, missing.json()) == (404, {"error": "no ticket 'nope'"})
    early = client.post(f"/desk/api/tickets/{ticket_id}/reply", headers=ana, json={"text": "hi"})
    assert (early.status_code, early.json()) == (409, {"error": f"ticket {ticket_id} is queued; claim it first"})
    assert client.post(f"/desk/api/tickets/{ticket_id}/claim", headers=ana).status_code == 200
    empty = client.post(f"/desk/api/tickets/{ticket_id}/reply", headers=ana, json={"text": "   "})
    assert (empty.status_code, empty.json()) == (400, {"error": "text is empty"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("no such thing"), 404),
        (Conflict("already done"), 409),
        (Forbidden("not yours"), 403),
        (Rejected("empty"), 400),
        (Invalid("not a role"), 422),
        (TooLarge("too long"), 413),
    ],
)
def test_every_family_has_a_status_code(error: CrowdDeskError, status: int) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def refuse() -> None:
        raise error

    response = TestClient(app).get("/")
    assert (response.status_code, response.json()) == (status, {"error": str(error)})


def test_an_error_of_two_families_answers_as_the_more_specific_one() -> None:
    class Both(Rejected, Conflict):
        pass

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def refuse() -> None:
        raise Both("belongs to another channel")

    assert TestClient(app).get("/").status_code == 409


def test_the_cli_exits_2_for_an_unknown_id_and_1_for_a_refusal(
    demo_project: Path, database_url: str, db_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (exit_code_for(NotFound("x")), exit_code_for(Conflict("x")), exit_code_for(Rejected("x"))) == (
        EXIT_NOT_FOUND,
        EXIT_REFUSED,
        EXIT_REFUSED,
    )
    ticket_id = open_ticket(ConversationStore(db_engine))

    def desk(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["desk", *args, "--project", str(demo_project), "--database-url", database_url])
        return code, capsys.readouterr().err

    assert desk("agent", "add", "ana")[0] == 0
    assert desk("claim", "nope", "--as", "ana") == (EXIT_NOT_FOUND, "error: no ticket 'nope'\n")
    assert desk("reply", ticket_id, "hi", "--as", "ana") == (
        EXIT_REFUSED,
        f"error: ticket {ticket_id} is queued; claim it first\n",
    )


def _modules() -> list[str]:
    """Every module of CrowdDesk's packages, by its installed name."""
    names = []
    for package in PACKAGES:
        root = importlib.import_module(f"crowddesk.{package}")
        names += [root.__name__, *(info.name for info in pkgutil.walk_packages(root.__path__, f"{root.__name__}."))]
    return names


def _exception_classes() -> dict[str, set[str]]:
    """Module → the classes it defines at top level that derive (by the names of their bases) from an
    exception class."""
    trees = {
        name: ast.parse(Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")) for name in _modules()
    }
    exceptions = {
        name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
    }
    found: dict[str, set[str]] = {}
    grew = True
    while grew:  # a class deriving from an exception class of another module counts too
        grew = False
        for module, tree in trees.items():
            for node in tree.body:
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in found.get(module, set())
                    and any(ast.unparse(base).rpartition(".")[2] in exceptions for base in node.bases)
                ):
                    found.setdefault(module, set()).add(node.name)
                    exceptions.add(node.name)
                    grew = True
    return found


def test_every_exception_class_of_crowddesk_derives_from_crowddesk_error() -> None:
    outside = []
    for module_name, names in _exception_classes().items():
        module = importlib.import_module(module_name)
        outside += [f"{module_name}.{name}" for name in names if not issubclass(getattr(module, name), CrowdDeskError)]
    assert outside == []
