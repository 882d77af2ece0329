"""`http.request` lives in the connectors app (apps/connectors/activities/http.py); this
module keeps builtin.py's import working and re-exports the destination guard."""

from __future__ import annotations

from apps.connectors.activities import http as _http  # noqa: F401  (registers http.request and the other connectors)
from apps.connectors.outbound import check_destination  # noqa: F401
