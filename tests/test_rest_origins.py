"""Which web pages may call the REST webhook from a browser: `rest.allowed_origins`.

A page on any site can POST `text/plain` to another origin without a CORS preflight, so the
webhook itself must refuse origins it doesn't know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.app import create_app
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.base import CredentialsError
from crowddesk.connectors.rest import RestChannel
from tests.demo_bot import API_ACCESS, API_AUTH, demo_bot_with_credentials

WEBHOOK = "/webhooks/rest/webhook"
SHOP = "https://shop.example.com"
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def shop_client(
    demo_project: Path, demo_training: TrainResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    bot = demo_bot_with_credentials(
        demo_project, demo_training, tmp_path_factory.mktemp("rest-origins"), f'rest:\n  allowed_origins: ["{SHOP}"]\n'
    )
    with TestClient(create_app(bot, API_ACCESS)) as client:
        yield client


def say_from(client: TestClient, origin: str | None, sender: str) -> httpx.Response:
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    return client.post(WEBHOOK, content=f'{{"sender": "{sender}", "message": "hello"}}', headers=headers)


def user_texts(client: TestClient, sender: str) -> list[str]:
    events = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["events"]
    return [e["text"] for e in events if e["event"] == "user"]


def test_a_page_on_an_unlisted_origin_is_refused_and_nothing_is_stored(shop_client: TestClient, sender: str) -> None:
    response = say_from(shop_client, EVIL, sender)
    assert response.status_code == 403
    assert response.json()["error"] == (
        f"origin {EVIL} may not call this webhook; add it to rest.allowed_origins in credentials.yml"
    )
    assert "access-control-allow-origin" not in response.headers
    assert user_texts(shop_client, sender) == []


def test_a_listed_origin_gets_cors_headers_and_a_working_preflight(shop_client: TestClient, sender: str) -> None:
    preflight = shop_client.options(
        WEBHOOK,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert shop_client.options(WEBHOOK, headers={"Origin": EVIL}).status_code == 403

    response = say_from(shop_client, SHOP, sender)
    assert response.status_code == 200 and response.json()
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["vary"] == "Origin"


def test_clients_that_send_no_origin_work_as_before(shop_client: TestClient, sender: str) -> None:
    response = say_from(shop_client, None, sender)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert user_texts(shop_client, sender) == ["hello"]


def test_without_the_setting_only_localhost_pages_may_call(demo_client: TestClient, sender: str) -> None:
    assert say_from(demo_client, EVIL, sender).status_code == 403
    assert say_from(demo_client, "http://localhost:3000", sender).status_code == 200


def test_allowed_origins_are_checked_when_credentials_load() -> None:
    assert RestChannel.from_credentials({"allowed_origins": ["https://Shop.example.com"]}).allowed_origins == {SHOP}
    with pytest.raises(CredentialsError, match=r"rest\.allowed_origins\[0\]: 'shop\.example\.com' is not an origin"):
        RestChannel.from_credentials({"allowed_origins": ["shop.example.com"]})
    with pytest.raises(CredentialsError, match=r"rest\.allowed_origins: must be a list"):
        RestChannel.from_credentials({"allowed_origins": SHOP})
