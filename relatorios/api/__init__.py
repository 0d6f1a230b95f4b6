"""The HTTP API: validates report requests and enqueues them (FastAPI)."""
