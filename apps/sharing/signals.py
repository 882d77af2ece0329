"""Signals sent when a share changes, for higher apps to react to (apps.comments records activity and
notifies the grantee) without sharing importing them. Sent inside the share's transaction."""

from django.dispatch import Signal

# kwargs: obj, grantee (user or group), level, acting_user
object_shared = Signal()
