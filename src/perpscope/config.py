"""The typed configuration root: one TOML file plus the environment, validated once at start-up.

Precedence, highest first: command-line options (applied by the CLI), environment variables,
the TOML file, defaults. The file is ``$PERPSCOPE_CONFIG`` when set, otherwise ``config.toml`` in
the user config directory (``perpscope config show`` prints which). Secrets (API keys) are read
from the environment only, never from the file. ``docs/configuration.md`` documents every key;
``config.example.toml`` is a complete example.
"""

from __future__ import annotations

import os
import re
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
    "memory_limit_bytes",
    "physical_memory_bytes",
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


_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*$", re.IGNORECASE)
MIN_MEMORY_LIMIT = 64 * 2**20
"""The smallest workbench memory limit: below it DuckDB cannot run even a tiny query."""
_MAX_MEMORY_SHARE = 0.8
"""The largest workbench memory limit, as a share of the machine's physical memory."""


def physical_memory_bytes() -> int:
    """The machine's physical memory in bytes (a generous 16 GiB when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX systems
        return 16 * 2**30


def memory_limit_bytes(text: str) -> int:
    """The number of bytes of a memory limit such as ``"4GB"``, ``"512MiB"`` or ``"auto"``.

    ``auto`` is half the physical memory, at most 4 GiB. Units follow DuckDB: ``KB``/``MB``/
    ``GB``/``TB`` are powers of 1000, ``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024.

    Raises:
        ValueError: the text is not a size, or is below 64 MiB or above 80% of the physical
            memory (a limit the machine cannot give would let one query swap it to a halt).
    """
    ram = physical_memory_bytes()
    if text.strip().lower() == "auto":
        return min(4 * 2**30, ram // 2)
    match = _MEMORY.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size like '4GB' or '512MiB' (or 'auto')")
    number, unit = match.groups()
    value = int(float(number) * _UNITS[unit.upper()])
    if value < MIN_MEMORY_LIMIT:
        raise ValueError(f"{text!r} is too small: the workbench needs at least 64MiB")
    if value > ram * _MAX_MEMORY_SHARE:
        raise ValueError(
            f"{text!r} is more than 80% of this machine's memory "
            f"({ram / 2**30:.1f} GiB): one query could swap the machine to a halt"
        )
    return value


MAX_TIMEOUT_S = 3600.0
"""The longest time limit a workbench query may be given, seconds."""
MAX_ROWS = 10_000_000
"""The largest row cap of the workbench."""


class WorkbenchConfig(_Strict):
    """Limits of the read-only SQL workbench."""

    max_rows: int = Field(default=10_000, ge=1, le=MAX_ROWS)
    timeout_s: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    memory_limit: str = Field(
        default="auto",
        description="DuckDB memory limit, e.g. '4GB'; 'auto' = half the RAM, <= 4GiB",
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        memory_limit_bytes(value)  # raises ValueError with the reason
        return value

    @property
    def memory_limit_bytes(self) -> int:
        """The memory limit in bytes."""
        return memory_limit_bytes(self.memory_limit)


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
