"""Safe rendering of comment bodies: everything is escaped first, then a tiny markdown
subset is applied to the escaped text: **bold**, *italics*, `code`, [text](http(s)://…)
links and @mentions. Nothing the user typed can become a tag or an attribute of its own.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_.+-]*[A-Za-z0-9_])")
CODE = re.compile(r"`([^`\n]+)`")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
# On escaped text: the URL cannot hold a quote or angle bracket (they are entities by now).
LINK = re.compile(r"\[([^\[\]\n]+)\]\((https?://[^\s()]+)\)")


def mentioned_usernames(body: str) -> list[str]:
    seen: list[str] = []
    for name in MENTION.findall(body):
        if name not in seen:
            seen.append(name)
    return seen


def render_body(body: str) -> SafeString:
    text: str = escape(body)  # plain str from here: the rules below add the markup
    kept: list[str] = []

    def keep(html: str) -> str:
        # Finished pieces (code, links) are set aside so later rules cannot reach inside them.
        kept.append(html)
        return f"\x00{len(kept) - 1}\x00"

    text = text.replace("\x00", "")
    text = CODE.sub(lambda m: keep(f"<code>{m.group(1)}</code>"), text)
    text = LINK.sub(lambda m: keep(f'<a href="{m.group(2)}" rel="nofollow noopener noreferrer">{m.group(1)}</a>'), text)
    text = BOLD.sub(r"<strong>\1</strong>", text)
    text = ITALIC.sub(r"<em>\1</em>", text)
    text = MENTION.sub(r'<span class="mention">@\1</span>', text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    text = text.replace("\n", "<br>")
    return mark_safe(text)  # noqa: S308  (built from escaped text above)
