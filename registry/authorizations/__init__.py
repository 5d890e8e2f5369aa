"""Data sharing under authorization, served: authorizations stored and anchored, the data
gateway with its signed, hash-chained, anchored access log, and the subject's tracker. The
rules themselves are :mod:`authorizations`'."""
