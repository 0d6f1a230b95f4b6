"""The HTTP API: validates report requests and enqueues them (FastAPI)."""

# The application factory, as uvicorn names it: `uvicorn --factory relatorios.api.app:create_app`.
FACTORY = "relatorios.api.app:create_app"
