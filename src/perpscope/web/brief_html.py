"""The overview page: the morning brief, one card per asset."""

from __future__ import annotations

from perpscope.web import html
from perpscope.web.pages import Page

__all__ = ["brief_html"]


def brief_html(page: Page) -> str:
    """The brief as cards (filled in once the brief service lands)."""
    return html.page_html(page)
