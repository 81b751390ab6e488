"""Every channel CrowdDesk knows, by the name its block has in credentials.yml.

Imports are lazy so a project pays only for the platform libraries of the channels it uses.
"""

from __future__ import annotations

from importlib import import_module

from crowddesk.connectors.base import ChannelConnector, CredentialsError

CHANNELS: dict[str, str] = {
    "rest": "crowddesk.connectors.rest:RestChannel",
    "callback": "crowddesk.connectors.callback:CallbackChannel",
    "telegram": "crowddesk.connectors.telegram:TelegramChannel",
    "slack": "crowddesk.connectors.slack:SlackChannel",
    "twilio": "crowddesk.connectors.twilio_sms:TwilioSmsChannel",
    "whatsapp": "crowddesk.connectors.meta.whatsapp:WhatsAppChannel",
    "webchat": "crowddesk.connectors.webchat:WebchatChannel",
    "x": "crowddesk.connectors.x:XChannel",
    "messenger": "crowddesk.connectors.meta.messaging:MessengerChannel",
    "instagram": "crowddesk.connectors.meta.messaging:InstagramChannel",
}


def check_known(name: str) -> None:
    """Raise `CredentialsError` listing the known channels unless `name` is one of them."""
    if name not in CHANNELS:
        raise CredentialsError(f"unknown channel {name!r}; known channels: {', '.join(sorted(CHANNELS))}")


def connector_class(name: str) -> type[ChannelConnector]:
    """The connector registered as `name`; an unknown name lists the known ones."""
    check_known(name)
    module_name, _, class_name = CHANNELS[name].partition(":")
    return getattr(import_module(module_name), class_name)


def namespace_owner(sender_id: str) -> str | None:
    """The channel whose namespace of senders (`<channel>:...`) `sender_id` is in, if any."""
    prefix, colon, _ = sender_id.partition(":")
    return prefix if colon and prefix in CHANNELS else None
