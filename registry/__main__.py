"""``python -m registry`` serves the registry (see :mod:`registry.server`)."""

from registry.server import main

main()
