"""The analysts' page: `GET /` and its three static files, served from the package itself.

No build step and nothing from a CDN (the servers have no internet): plain HTML, CSS and JS in
relatorios/web/. Only the files listed here are served, so no path from a URL reaches the disk.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Revalidate on every load: after an upgrade, the page and its script must never mismatch.
NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(
        WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=NO_CACHE
    )


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, detail=f"arquivo estático não encontrado: {name}")
    return FileResponse(WEB_DIR / name, media_type=media_type, headers=NO_CACHE)
