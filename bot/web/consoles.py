"""Serving a web console (the desk's, the content team's): one page and a fixed list of files from
`bot/static/`, under a content security policy that lets nothing injected run.

No `from __future__ import annotations`: FastAPI reads route annotations at run time.
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The console has no inline script or style and loads nothing from other origins, so the
# policy can forbid both: injected customer text could never run even if it slipped through.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)


def console_router(prefix: str, page: str, assets: dict[str, str]) -> APIRouter:
    """`prefix` serves the `page` file of static/; `prefix/static/NAME` the `assets` by media type."""
    router = APIRouter(prefix=prefix, include_in_schema=False)

    @router.get("")
    async def console_page() -> FileResponse:
        return _static(page, "text/html")

    @router.get("/static/{name}")
    async def console_asset(name: str) -> FileResponse:
        media_type = assets.get(name)
        if media_type is None:
            # A fixed list, so a crafted name can never reach outside static/.
            raise HTTPException(404, f"no console file {name!r}")
        return _static(name, media_type)

    return router
