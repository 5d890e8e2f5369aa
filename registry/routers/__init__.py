"""One router per resource of the registry's HTTP API."""
