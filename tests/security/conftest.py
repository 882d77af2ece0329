"""The connectors' local HTTP servers, activity contexts and worker, for the credential tests here."""

from tests.connectors.conftest import conn_worker, connectors_worker, local_server, run_context, server, session_provider  # noqa: F401
