"""``perpscope.open_store`` refuses a path that is not a store unless asked to create one."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpscope.errors import StoreError
from perpscope.store.lake import Lake
from perpscope.store.query import open_store


def test_a_missing_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no store at .*typo.*create=True"):
        open_store(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_a_directory_that_is_not_a_store_is_refused_even_with_create(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="is not a perpscope store"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="is not a perpscope store"):
        open_store(tmp_path, create=True)


def test_an_empty_directory_needs_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="empty directory"):
        open_store(tmp_path)
    assert open_store(tmp_path, create=True).tables() == []
    assert Lake(tmp_path).exists()


def test_create_makes_an_empty_store_and_an_existing_store_opens(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new", create=True)
    assert store.tables() == []
    assert open_store(tmp_path / "new").table("funding").height == 0
