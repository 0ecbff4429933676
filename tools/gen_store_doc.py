"""Regenerate the table reference of docs/store.md from domain/schema.py.

Run: ``python tools/gen_store_doc.py`` (rewrites the part between the markers).
"""

from __future__ import annotations

from pathlib import Path

from perpscope.domain.schema import TABLES

DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"
BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


def render() -> str:
    """The Markdown reference of every table."""
    out = []
    for spec in TABLES.values():
        out.append(f"### `{spec.name}`\n\n{spec.doc} Key: `{', '.join(spec.key)}`.\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        for col in spec.columns:
            req = "" if col.nullable else " (required)"
            out.append(f"| `{col.name}` | {col.type}{req} | {col.doc} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
