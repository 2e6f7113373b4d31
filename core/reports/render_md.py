"""Markdown (wiki-ready) and plain-text renderings of a report.

Markdown uses only tables, lists, emphasis and links — what GitHub, GitLab, Confluence, Wiki.js
and MediaWiki's Markdown extensions all render — and escapes table-breaking characters in names
and comments. The plain text is the e-mail alternative part of an agent report.
"""

from __future__ import annotations

from typing import Any

from .templating import context, environment


def markdown(report: Any) -> str:
    """The report as Markdown (team, agent or trends: by `report.kind`)."""
    return environment(False).get_template(f"{report.kind}.md.j2").render(context(report))


def text(report: Any) -> str:
    """Plain text of an agent report (the text/plain part of its e-mail)."""
    return environment(False).get_template(f"{report.kind}.txt.j2").render(context(report))
