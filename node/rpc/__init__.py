"""The node's JSON-RPC server: transport (server), method table (methods), parameter
parsing (params), error codes (errors) and Ethereum JSON shapes (format)."""
