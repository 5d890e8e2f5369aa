"""Plumbing of the HTTP servers the services run under uvicorn (the registry, the explorer):
what one connection may hold before its request is read (:mod:`serving.connection_guard`).
It imports no other package of the repository; each service gives it its own settings."""
