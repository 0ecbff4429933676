"""docs/store.md lists every table and column of domain/schema.py, exactly as generated."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_doc_table_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_store_doc", ROOT / "tools" / "gen_store_doc.py"
    )
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = (ROOT / "docs" / "store.md").read_text(encoding="utf-8")
    current = text.split(gen.BEGIN, 1)[1].split(gen.END, 1)[0].strip()
    assert current == gen.render().strip(), "run: python tools/gen_store_doc.py"
