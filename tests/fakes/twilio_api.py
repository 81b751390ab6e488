"""A fake Twilio REST API on 127.0.0.1: Messages.create with Twilio's shapes and errors, and the
signed webhook requests Twilio sends.

Point the `twilio` library at it with the channel's `api_url: api.base_url`. It checks the
account's HTTP basic auth, records each accepted message (method "messages": To, From, Body)
and can answer the next one with a Twilio error (a 429, a 500, 21211 invalid number...).
"""

from __future__ import annotations

import base64
import itertools
from urllib.parse import urlencode

from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.server import FakeAPIServer, Params

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "twilio-auth-token-for-tests"
TWILIO_NUMBER = "+15005550006"
PUBLIC_URL = "https://bot.example.com"


class FakeTwilioAPI(FakeAPIServer):
    """The REST API under `base_url`, for one account."""

    thread_name = "fake-twilio-api"

    def __init__(self) -> None:
        super().__init__()
        self._sids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create_message)

    def refuse_next(self, status: int, code: int, message: str) -> None:
        """Answer the next Messages.create with this Twilio error."""
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        self.fail_next("messages", web.json_response({**body, "status": status}, status=status))

    async def _create_message(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.match_info["account"] != ACCOUNT_SID or request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        params: Params = {key: str(value) for key, value in (await request.post()).items()}
        failure = self.scripted_failure("messages", params)
        if failure is not None:
            return failure
        self.record("messages", params)
        sid = f"SM{next(self._sids):032x}"
        return web.json_response(
            {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "status": "queued",
                "to": params.get("To"),
                "from": params.get("From"),
                "body": params.get("Body"),
            },
            status=201,
        )


def incoming_sms(sender: str, text: str, message_sid: str) -> dict[str, str]:
    """The form fields Twilio posts to the messaging webhook for one inbound SMS."""
    return {
        "ToCountry": "US",
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "SmsSid": message_sid,
        "SmsStatus": "received",
        "Body": text,
        "To": TWILIO_NUMBER,
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def signed(url: str, fields: dict[str, str], token: str = AUTH_TOKEN) -> tuple[str, dict[str, str]]:
    """The form body and headers Twilio sends when it posts `fields` to `url`."""
    signature = RequestValidator(token).compute_signature(url, fields)
    return urlencode(fields), {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
