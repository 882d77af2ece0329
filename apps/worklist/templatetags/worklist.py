from django import template

from .. import services

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_count(context) -> int:
    """Open items waiting for the current user (one query, cached on the request)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    if not hasattr(request, "_wb_inbox_count"):
        request._wb_inbox_count = services.inbox_count(user)
    return request._wb_inbox_count
