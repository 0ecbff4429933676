"""The typed configuration root: one TOML file plus the environment, validated once at start-up.

Precedence, highest first: command-line options (applied by the CLI), environment variables,
the TOML file, defaults. The file is ``$PERPSCOPE_CONFIG`` when set, otherwise ``config.toml`` in
the user config directory (``perpscope config show`` prints which). Secrets (API keys) are read
from the environment only, never from the file. ``docs/configuration.md`` documents every key;
``config.example.toml`` is a complete example.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from perpscope.errors import ConfigError

__all__ = [
    "APP_NAME",
    "Config",
    "StoreConfig",
    "WorkbenchConfig",
    "default_config_path",
    "default_store_path",
    "load_config",
]

APP_NAME = "perpscope"


def default_store_path() -> Path:
    """The store used when neither ``--store`` nor ``PERPSCOPE_STORE`` is given."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "store"


def default_config_path() -> Path:
    """Where the config file is looked for when ``PERPSCOPE_CONFIG`` is not set."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    """Where the store lives and how it is kept."""

    path: Path = Field(default_factory=default_store_path)
    vacuum_retention_h: float = Field(
        default=168.0, ge=0, description="files older than this are removed by store optimize"
    )

    @field_validator("path")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class WorkbenchConfig(_Strict):
    """Limits of the read-only SQL workbench."""

    max_rows: int = Field(default=10_000, ge=1, le=10_000_000)
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    memory_limit: str = Field(default="4GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")


class Config(_Strict):
    """The configuration root, passed down explicitly (never read from globals)."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    workbench: WorkbenchConfig = Field(default_factory=WorkbenchConfig)
    source: str = Field(default="defaults", description="where the configuration was read from")


_ENV_KEYS: dict[str, tuple[str, str]] = {
    "PERPSCOPE_STORE": ("store", "path"),
    "PERPSCOPE_SQL_MAX_ROWS": ("workbench", "max_rows"),
    "PERPSCOPE_SQL_TIMEOUT_S": ("workbench", "timeout_s"),
}


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration.

    Args:
        path: the TOML file; ``None`` means ``$PERPSCOPE_CONFIG`` or the default path. A missing
            default file is fine; a missing file that was named explicitly is an error.
        environ: the environment to read (defaults to ``os.environ``).

    Raises:
        ConfigError: the file is unreadable, not TOML, or has unknown keys or bad values.
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or bool(env.get("PERPSCOPE_CONFIG"))
    file = path or Path(env.get("PERPSCOPE_CONFIG") or default_config_path())
    data: dict[str, Any] = {}
    sources: list[str] = []
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        sources.append(str(file))
    elif explicit:
        raise ConfigError(f"config file {file} does not exist")
    for var, (section, key) in _ENV_KEYS.items():
        if env.get(var):
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"config file {file}: [{section}] must be a table")
            data[section][key] = env[var]
            sources.append(var)
    data["source"] = ", ".join(sources) or "defaults"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        origin = ", ".join(sources) or "defaults"
        raise ConfigError(f"bad configuration ({origin}): {where}: {first['msg']}") from None
