from django import template
from django.utils.safestring import SafeString

from apps.comments.rendering import render_body

register = template.Library()


@register.filter
def comment_html(body: str) -> SafeString:
    """The comment body escaped, with the small markdown subset applied."""
    return render_body(body or "")
