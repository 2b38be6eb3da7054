"""Jinja2 templates (autoescaped), their filters, and the route class every page uses: it turns
the service's errors into HTML pages (a 404 page, not JSON), sends a browser without a session
to sign in, and adds the security headers (a Content-Security-Policy that allows nothing but
this origin: no page can load or send anything elsewhere)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.errors import APIError
from api.web.session import SignInRequiredError

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _static_version() -> str:
    """Changes when a static file does: URLs carry it, so browsers may cache them long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def fmt_number(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_percent(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one): the link to a
    sort, a page or a tab keeps every other choice, so each view has a URL of its own."""
    params: dict[str, Any] = {
        k: v for k, v in request.query_params.multi_items() if k not in ("fragment", "notice")
    }
    for key, value in changes.items():
        key = key.rstrip("_")
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = urlencode(params)
    return request.url.path + (f"?{encoded}" if encoded else "")


def safe_next(target: str | None, default: str = "/jobs") -> str:
    """A redirect target after sign-in: a path on this site, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters.update(num=fmt_number, duration=fmt_duration, when=fmt_when, pct=fmt_percent)
templates.env.globals.update(query=query, static_version=_static_version())
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = {"request": request, **(context or {})}
    ctx.setdefault("owner", getattr(request.state, "owner", None))
    ctx.setdefault("csrf", getattr(request.state, "csrf", ""))
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    titles = {
        400: "Bad request",
        401: "Sign in needed",
        403: "Forbidden",
        404: "Not found",
        409: "Not possible right now",
        413: "Too large",
        422: "Invalid request",
    }
    return render(
        request,
        "error.html",
        {"title": titles.get(status_code, "Error"), "message": message, "status": status_code},
        status_code=status_code,
    )


class PageRoute(APIRoute):
    """A dashboard page: HTML errors, sign-in redirects, security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequiredError as exc:
                if request.method == "GET" and "fragment" not in request.query_params:
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    response = RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
                else:  # a fragment fetched by the page's script: it sends the browser to sign in
                    response = render_error(request, 401, exc.message)
            except APIError as exc:
                response = render_error(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                response = render_error(request, 422, f"invalid request: {problems}")
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return page_handler
