"""Wire the dashboard into the app: page and result routes, static files, vendored assets
from installed packages (Plotly.js from ``plotly``, Swagger UI from ``swagger-ui-bundle-v2``)
and an offline ``/docs``. Nothing is fetched from another host, and nothing is built at install
time: ``pip install`` brings every asset."""

from __future__ import annotations

import gzip
import threading
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from api.limits import UploadLimitMiddleware, too_large_message
from api.routes import results
from api.web import pages
from api.web.templating import STATIC, templates

SWAGGER_PREFIX = "/vendor/swagger-ui"
PLOTLY_URL = "/vendor/plotly.min.js"
PAGE_UPLOAD_PATHS = frozenset({"/datasets"})


class _PlotlyAsset:
    """plotly.min.js from the installed plotly package, gzipped once, cached in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plain: bytes | None = None
        self._gzipped: bytes | None = None
        self.version = version("plotly")

    def get(self, gzipped: bool) -> bytes:
        with self._lock:
            if self._plain is None:
                from plotly.offline import get_plotlyjs

                self._plain = get_plotlyjs().encode()
                self._gzipped = gzip.compress(self._plain, compresslevel=6, mtime=0)
            return self._gzipped if gzipped and self._gzipped else self._plain


class PageUploadLimit(UploadLimitMiddleware):
    """The API's upload limit on the dashboard's upload form, answered with a page."""

    def _response(self) -> HTMLResponse:  # type: ignore[override]
        message = too_large_message(self.max_upload_bytes)
        html = templates.get_template("too_large.html").render(message=message)
        return HTMLResponse(html, status_code=413)


def _swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def install_dashboard(app: FastAPI, max_upload_bytes: int) -> None:
    """Add the dashboard to ``app`` (whose ``docs_url`` must be None: /docs is served here);
    ``max_upload_bytes`` limits the upload form as it does the API's upload."""
    plotly = _PlotlyAsset()
    templates.env.globals["plotly_url"] = f"{PLOTLY_URL}?v={plotly.version}"

    @app.get(PLOTLY_URL, include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        gz = "gzip" in request.headers.get("accept-encoding", "")
        headers = {
            "Cache-Control": "public, max-age=31536000, immutable",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if gz:
            headers["Content-Encoding"] = "gzip"
        return Response(plotly.get(gz), media_type="text/javascript", headers=headers)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – API docs",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            # the online validator's badge would be a request to another host
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(SWAGGER_PREFIX, StaticFiles(directory=_swagger_dir()), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(results.router)
    app.include_router(results.streams)
    app.include_router(pages.router)
    app.add_middleware(PageUploadLimit, max_upload_bytes=max_upload_bytes, paths=PAGE_UPLOAD_PATHS)
