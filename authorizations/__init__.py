"""Data-sharing authorizations: consent records, scope and the gateway's checks (pure)."""
