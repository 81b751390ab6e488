"""How a route gets the services it works with: the composition root (`bot/server/app.py`) builds
each service once and `provide`s it on the app, where it is found by its class; a route asks for
one with a parameter `Annotated[TicketDesk, Depends(provided(TicketDesk))]`. Routes are then
module-level functions, and a test mounts a router on an app that provides only what it calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from fastapi import FastAPI, Request

_Service = TypeVar("_Service")


class Services:
    """The services of one app, at most one of each class."""

    def __init__(self, services: Iterable[object]) -> None:
        self._by_class: dict[type, object] = {}
        for service in services:
            if type(service) in self._by_class:
                raise ValueError(f"two services of class {type(service).__name__}; an app provides one of each")
            self._by_class[type(service)] = service

    def get(self, kind: type[_Service]) -> _Service:
        """The service of class `kind`; LookupError when the app provides none."""
        service = self._by_class.get(kind)
        if not isinstance(service, kind):
            raise LookupError(f"the app provides no {kind.__name__}; a route asks for it")
        return service


def provide(app: FastAPI, *services: object) -> None:
    """Make `services` available to the routes of `app`, each found by its class."""
    app.state.services = Services(services)


def provided(kind: type[_Service]) -> Callable[[Request], _Service]:
    """A FastAPI dependency: the service of class `kind` that the app provides."""

    def service(request: Request) -> _Service:
        services = request.app.state.services
        assert isinstance(services, Services)  # set by `provide`, and by nothing else
        return services.get(kind)

    return service
