"""Helpers every app may use: the lowest layer (see docs/architecture.md). Not a Django app: no
models, no settings of its own, and it imports no other package of ours."""
