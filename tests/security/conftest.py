"""The connectors' local HTTP servers and activity contexts, for the credential tests here."""

from tests.connectors.conftest import local_server, run_context, server  # noqa: F401
