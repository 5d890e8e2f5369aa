"""The auditors' explorer: an indexer that follows a node, and read-only pages."""
