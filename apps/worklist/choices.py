from django.db import models


class WorkItemState(models.TextChoices):
    OFFERED = "offered", "Offered"
    CLAIMED = "claimed", "Claimed"
    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_STATES = (WorkItemState.OFFERED, WorkItemState.CLAIMED, WorkItemState.STARTED)
HELD_STATES = (WorkItemState.CLAIMED, WorkItemState.STARTED)
DEFAULT_OUTCOMES = ["approve", "reject"]


class AllocationStrategy(models.TextChoices):
    OFFER_ALL = "offer_all", "Offer to everyone eligible"
    ROUND_ROBIN = "round_robin", "Round robin"
    SHORTEST_QUEUE = "shortest_queue", "Shortest queue (fewest open items)"
    RANDOM = "random", "Random"
