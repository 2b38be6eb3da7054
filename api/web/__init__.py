"""The web dashboard: server-rendered pages at ``/`` over the same services as the JSON API.

``api.web.app.install_dashboard(app)`` adds the pages, their static files (Plotly.js from the
installed ``plotly`` package, Swagger UI from ``swagger-ui-bundle-v2``) and an offline
``/docs``.
"""
