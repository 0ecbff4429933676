"""The web dashboard of ``perpscope serve`` (FastAPI): every page with a JSON twin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpscope.web.app import create_app

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app_from_environment", "create_app"]


def app_from_environment() -> FastAPI:
    """The app over the configured store (``$PERPSCOPE_CONFIG``, ``$PERPSCOPE_STORE``): the
    factory ``perpscope serve`` hands to uvicorn."""
    from perpscope.config import load_config
    from perpscope.store.lake import Lake

    config = load_config()
    return create_app(Lake(config.store.path), config)
