"""The registry's limits on what arrives from outside, in one table (name, value, where it
is enforced). The body size is a setting (``max_upload_bytes``, :mod:`registry.settings`);
the rest are fixed here. :mod:`registry.boundary` applies the request limits before any
route, authentication or JSON parser sees the body; the request schemas
(:mod:`registry.schemas`) apply the metadata limits at intake."""

from __future__ import annotations

from chain.limits import KIB

MAX_REQUEST_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects in a JSON request body (:mod:`registry.boundary`,
before parsing): a bulk notarization with metadata at :data:`MAX_METADATA_DEPTH` nests 20
levels; a nesting bomb is refused 422 without being parsed."""

MAX_METADATA_DEPTH = 16
"""Deepest nesting of one record's ``metadata`` object, and of its ``fields`` object,
counting the object itself (:mod:`registry.schemas`, at intake): what is stored can always
be read back."""

MAX_METADATA_BYTES = 64 * KIB
"""Largest canonical (RFC 8785) encoding of one record's ``metadata`` object, and of its
``fields`` object (:mod:`registry.schemas`, at intake)."""

DRAIN_BYTES = 1024 * KIB
"""How much of a chunked body past ``max_upload_bytes`` is read and dropped before the 413
is sent (:mod:`registry.boundary`), so that a client still sending sees the answer rather
than a reset connection; a longer body has its connection closed under it."""

MAX_PAGE_ENTRIES = 200
"""Most entries one page of a paged listing holds (the ``limit`` query parameter of the
data-sharing listings, :mod:`registry.authorizations.paging`): 422 above it."""

MAX_PAGE_CURSOR_CHARS = 300
"""Longest ``after`` cursor of a paged listing, checked before it is decoded
(:mod:`registry.authorizations.paging`): 422 above it, or for anything not a cursor of that
listing."""
