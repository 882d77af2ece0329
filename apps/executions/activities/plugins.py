"""Third-party activities: a package declares an entry point in the group
`workflow_builder.activities` pointing at a module; importing that module registers
its activities with `apps.workflows.definition.registry.register_activity`."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

logger = logging.getLogger("workflow.activities")
GROUP = "workflow_builder.activities"


def load_entry_points() -> list[str]:
    loaded = []
    for ep in entry_points(group=GROUP):
        try:
            ep.load()
            loaded.append(ep.name)
        except Exception:
            logger.exception("could not load activity plugin %s", ep.value)
    return loaded
