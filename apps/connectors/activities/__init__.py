"""Activities shipped by the connectors app; importing this package registers them."""

from . import ai, data, http, notify  # noqa: F401
