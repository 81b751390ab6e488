"""Who may read a conversation's tracker or call /model/parse: the API token and Rasa-style JWTs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.cli.main import main
from crowddesk.bot.cli.verbs import _demo_access
from crowddesk.bot.conversations.audit import AuditLog
from crowddesk.bot.server.api_access import JWT_SECRET_ENV, TOKEN_ENV, ApiAccess, ApiAccessError
from crowddesk.bot.server.app import create_app
from tests.demo_bot import API_AUTH

JWT_SECRET = "a-jwt-secret-for-tests-that-is-long-enough"


def signed(user: dict[str, Any], *, secret: str = JWT_SECRET, **claims: Any) -> dict[str, str]:
    """The Authorization header for a JWT with Rasa's payload `{"user": ...}`."""
    return {"Authorization": f"Bearer {jwt.encode({'user': user, **claims}, secret, algorithm='HS256')}"}


def say(client: TestClient, sender: str, text: str = "hello there") -> None:
    response = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def jwt_client(demo_client: TestClient) -> TestClient:
    """The demo bot behind a second app that also accepts JWTs (no lifespan: reads only)."""
    bot = demo_client.app.state.bot  # type: ignore[attr-defined]
    return TestClient(create_app(bot, ApiAccess(token="test-api-token", jwt_secret=JWT_SECRET)))


def test_without_a_configured_token_the_routes_refuse_and_say_how_to_configure_one(
    demo_client: TestClient, sender: str
) -> None:
    say(demo_client, sender, "my card number is 4111 1111 1111 1111")
    locked = TestClient(create_app(demo_client.app.state.bot))  # type: ignore[attr-defined]
    for response in (
        locked.get(f"/conversations/{sender}/tracker", headers=API_AUTH),
        locked.post("/model/parse", json={"text": "hi"}, headers=API_AUTH),
    ):
        assert response.status_code == 401
        assert "4111" not in response.text
        assert TOKEN_ENV in response.json()["error"] and "--auth-token" in response.json()["error"]


def test_the_token_is_accepted_as_bearer_header_or_rasa_query_parameter(demo_client: TestClient, sender: str) -> None:
    say(demo_client, sender)
    path = f"/conversations/{sender}/tracker"
    assert demo_client.get(path, headers=API_AUTH).json()["sender_id"] == sender
    assert demo_client.get(path, params={"token": "test-api-token"}).status_code == 200

    missing = demo_client.get(path)
    assert missing.status_code == 401 and "missing API token" in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = demo_client.get(path, headers={"Authorization": "Bearer test-api-tokem"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid API token"})
    assert demo_client.post("/model/parse", json={"text": "hi"}, params={"token": "nope"}).status_code == 401


def test_a_users_jwt_reads_only_that_users_conversation(
    demo_client: TestClient, jwt_client: TestClient, sender: str
) -> None:
    other = f"{sender}-other"
    say(demo_client, sender)
    say(demo_client, other)
    own = jwt_client.get(f"/conversations/{sender}/tracker", headers=signed({"username": sender, "role": "user"}))
    assert own.status_code == 200 and own.json()["events"]

    theirs = jwt_client.get(f"/conversations/{other}/tracker", headers=signed({"username": sender, "role": "user"}))
    assert theirs.status_code == 403
    assert "only its own conversation" in theirs.json()["error"] and "events" not in theirs.json()
    parse = jwt_client.post("/model/parse", json={"text": "hi"}, headers=signed({"username": sender, "role": "user"}))
    assert parse.status_code == 403 and "'admin'" in parse.json()["error"]

    admin = signed({"username": "ops", "role": "admin"})
    assert jwt_client.get(f"/conversations/{other}/tracker", headers=admin).status_code == 200
    assert jwt_client.post("/model/parse", json={"text": "hi"}, headers=admin).json()["intent"]["name"]
    # The static token still works next to JWTs.
    assert jwt_client.get(f"/conversations/{other}/tracker", headers=API_AUTH).status_code == 200


def test_staff_reads_are_audited_and_a_customers_own_reads_are_not(
    demo_client: TestClient, jwt_client: TestClient, sender: str
) -> None:
    say(demo_client, sender)
    for _ in range(3):  # a customer-facing client polling for agent replies
        assert (
            jwt_client.get(
                f"/conversations/{sender}/tracker", headers=signed({"username": sender, "role": "user"})
            ).status_code
            == 200
        )
    assert (
        jwt_client.get(
            f"/conversations/{sender}/tracker", headers=signed({"username": "ops", "role": "admin"})
        ).status_code
        == 200
    )
    assert jwt_client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).status_code == 200

    entries = AuditLog(demo_client.app.state.bot.database).entries(sender)  # type: ignore[attr-defined]
    assert sorted((e.actor, e.action) for e in entries) == [("api-token", "read_tracker"), ("jwt:ops", "read_tracker")]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (signed({"username": "x", "role": "admin"}, exp=int(time.time()) - 60), "the JWT has expired"),
        (
            signed({"username": "x", "role": "admin"}, secret="another-secret-that-is-long-enough-too"),
            "signature does not match",
        ),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid API token or JWT"),
    ],
)
def test_expired_or_ill_signed_jwts_are_refused_with_the_reason(
    jwt_client: TestClient, header: dict[str, str], reason: str
) -> None:
    response = jwt_client.get("/conversations/anyone/tracker", headers=header)
    assert response.status_code == 401 and reason in response.json()["error"]


def test_a_jwt_without_rasas_user_claim_is_forbidden(jwt_client: TestClient) -> None:
    token = jwt.encode({"sub": "someone"}, JWT_SECRET, algorithm="HS256")
    response = jwt_client.get("/conversations/someone/tracker", params={"token": token})
    assert response.status_code == 403 and "user.role" in response.json()["error"]


def test_settings_come_from_the_command_line_then_the_environment() -> None:
    environ = {TOKEN_ENV: "from-env", JWT_SECRET_ENV: JWT_SECRET}
    assert ApiAccess.configured(environ=environ) == ApiAccess("from-env", JWT_SECRET)
    assert ApiAccess.configured("from-flag", environ=environ).token == "from-flag"
    assert ApiAccess.configured(environ={TOKEN_ENV: ""}) == ApiAccess()
    with pytest.raises(ApiAccessError, match="HS256 needs a secret of at least 32 bytes"):
        ApiAccess(jwt_secret="short")
    with pytest.raises(ApiAccessError, match="--jwt-method: 'RS256' is not one of HS256, HS384, HS512"):
        ApiAccess(jwt_secret=JWT_SECRET, jwt_method="RS256")


def test_run_refuses_unusable_jwt_settings_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--project", str(tmp_path), "--jwt-secret", "short"]) == 1
    assert "error: --jwt-secret / CROWDDESK_JWT_SECRET: HS256 needs" in capsys.readouterr().err


def test_the_demo_prints_a_fresh_token_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(JWT_SECRET_ENV, raising=False)
    first, second = _demo_access(5005).token, _demo_access(5005).token
    assert first and second and first != second and len(first) >= 32
    printed = capsys.readouterr().out
    assert f"Bearer {first}" in printed and "http://127.0.0.1:5005/conversations/shell/tracker" in printed

    monkeypatch.setenv(TOKEN_ENV, "operator-chosen-token")
    assert _demo_access(5005).token == "operator-chosen-token"
    printed = capsys.readouterr().out
    assert "operator-chosen-token" not in printed and f"Bearer ${TOKEN_ENV}" in printed
