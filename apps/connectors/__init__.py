"""Connectors: stored credentials, hardened outbound HTTP, notifications, data mapping,
the AI assistant and the dry-run evaluator."""
