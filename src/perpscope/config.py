"""The typed configuration root: one TOML file plus the environment, validated once at start-up.

Precedence, highest first: command-line options (applied by the CLI), environment variables,
the TOML file, defaults. The file is ``$PERPSCOPE_CONFIG`` when set, otherwise ``config.toml`` in
the user config directory (``perpscope config show`` prints which). Secrets (API keys) are read
from the environment only, never from the file. ``docs/configuration.md`` documents every key;
``config.example.toml`` is a complete example.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from perpscope.domain.alert_rules import AlertsConfig, parse_alerts
from perpscope.errors import ConfigError
from perpscope.limits import MAX_ROWS, MAX_TIMEOUT_S

__all__ = [
    "APP_NAME",
    "Config",
    "HeatmapConfig",
    "StoreConfig",
    "WorkbenchConfig",
    "default_config_path",
    "default_store_path",
    "load_config",
    "with_store_path",
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


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the store lives and how it is kept (``[store]``).

    Attributes:
        path: the store directory (``~`` expanded).
        vacuum_retention_h: files older than this are removed by ``store optimize``.
    """

    path: Path = field(default_factory=default_store_path)
    vacuum_retention_h: float = 168.0


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


@dataclass(frozen=True, slots=True)
class WorkbenchConfig:
    """Limits of the read-only SQL workbench (``[workbench]``).

    Attributes:
        max_rows: the row cap of a result (1 to :data:`~perpscope.limits.MAX_ROWS`).
        timeout_s: the time limit of a query, seconds (above 0, at most
            :data:`~perpscope.limits.MAX_TIMEOUT_S`).
        memory_limit: DuckDB memory limit, e.g. ``'4GB'``; ``'auto'`` = half the RAM, <= 4GiB.
    """

    max_rows: int = 10_000
    timeout_s: float = 30.0
    memory_limit: str = "auto"

    @property
    def memory_limit_bytes(self) -> int:
        """The memory limit in bytes."""
        return memory_limit_bytes(self.memory_limit)


@dataclass(frozen=True, slots=True)
class HeatmapConfig:
    """The liquidation-heatmap estimator's settings (``[heatmap]``); unset keys keep the frozen,
    scored defaults of :class:`perpscope.analytics.liquidations.HeatmapParams`.

    Attributes:
        leverages: leverage tiers.
        weights: share of new notional per tier (one per tier; normalised).
        entry_price: ``typical``, ``close``, ``vwap`` or ``ohlc4``.
        split: ``taker``, ``long_short``, ``candle`` or ``neutral``.
        half_life_bars: level decay half-life in bars (0: none).
        turnover_half_life_h: positions turn over with this half-life in hours (0: never; the
            standing levels then live until crossed or OI falls).
        bin_pct: price bin width, a fraction (0.001 = 0.1%).
    """

    leverages: tuple[float, ...] | None = None
    weights: tuple[float, ...] | None = None
    entry_price: str | None = None
    split: str | None = None
    half_life_bars: float | None = None
    turnover_half_life_h: float | None = None
    bin_pct: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The configuration root, passed down explicitly (never read from globals).

    Attributes:
        store: ``[store]``.
        workbench: ``[workbench]``.
        alerts: ``[alerts]`` (notification URLs and rules).
        heatmap: ``[heatmap]`` (the liquidation estimator's settings).
        source: where the configuration was read from.
    """

    store: StoreConfig = field(default_factory=StoreConfig)
    workbench: WorkbenchConfig = field(default_factory=WorkbenchConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    heatmap: HeatmapConfig = field(default_factory=HeatmapConfig)
    source: str = "defaults"


def with_store_path(config: Config, path: Path, source: str) -> Config:
    """``config`` with another store path (from the command line), ``source`` appended."""
    return replace(
        config,
        store=replace(config.store, path=path.expanduser()),
        source=f"{config.source}, {source}",
    )


# ------------------------------------------------------------------------------- validation
# Each key is read by a parser that takes the TOML value (or the environment's text) and
# returns the typed value or raises ValueError with the reason.


def _number(value: Any, kind: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    try:
        number = float(value) if kind is float or isinstance(value, float) else int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if kind is int and (isinstance(value, float) or number != int(number)):
        raise ValueError(f"{value!r} is not a whole number")
    return number


def _bounded(
    kind: type, lo: float, hi: float | None, *, lo_open: bool = False
) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        number = _number(value, kind)
        if number < lo or (lo_open and number == lo):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}, not {number:g}")
        if hi is not None and number > hi:
            raise ValueError(f"must be <= {hi:g}, not {number:g}")
        return kind(number)

    return parse


def _path(value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a directory path")
    return Path(value).expanduser()


def _memory(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a size like '4GB' or 'auto'")
    memory_limit_bytes(value)  # raises ValueError with the reason
    return value


def _numbers(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a list of numbers, e.g. [5, 10, 25, 50, 100]")
    return tuple(_bounded(float, 0.0, None, lo_open=True)(v) for v in value)


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {value!r}")
        return str(value)

    return parse


_SECTIONS: dict[str, tuple[type, dict[str, Callable[[Any], Any]]]] = {
    "heatmap": (
        HeatmapConfig,
        {
            "leverages": _numbers,
            "weights": _numbers,
            "entry_price": _choice("typical", "close", "vwap", "ohlc4"),
            "split": _choice("taker", "long_short", "candle", "neutral"),
            "half_life_bars": _bounded(float, 0.0, None),
            "turnover_half_life_h": _bounded(float, 0.0, None),
            "bin_pct": _bounded(float, 0.0, 0.1, lo_open=True),
        },
    ),
    "store": (
        StoreConfig,
        {"path": _path, "vacuum_retention_h": _bounded(float, 0.0, None)},
    ),
    "workbench": (
        WorkbenchConfig,
        {
            "max_rows": _bounded(int, 1, MAX_ROWS),
            "timeout_s": _bounded(float, 0.0, MAX_TIMEOUT_S, lo_open=True),
            "memory_limit": _memory,
        },
    ),
}


def _validate(data: Mapping[str, Any], source: str) -> Config:
    """The :class:`Config` of parsed TOML/environment data; ValueError names the first bad key."""
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name == "alerts":
            try:
                sections[name] = parse_alerts(value)
            except ValueError as exc:
                raise ValueError(f"alerts.{exc}") from None
            continue
        if name not in _SECTIONS:
            known = ", ".join([*_SECTIONS, "alerts"])
            raise ValueError(f"{name}: unknown section (sections: {known})")
        cls, parsers = _SECTIONS[name]
        if not isinstance(value, Mapping):
            raise ValueError(f"{name}: [{name}] must be a table")
        values = {}
        for key, raw in value.items():
            if key not in parsers:
                known = ", ".join(f.name for f in fields(cls))
                raise ValueError(f"{name}.{key}: unknown key (keys: {known})")
            try:
                values[key] = parsers[key](raw)
            except ValueError as exc:
                raise ValueError(f"{name}.{key}: {exc}") from None
        sections[name] = cls(**values)
    return Config(**sections, source=source)


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
    origin = ", ".join(sources) or "defaults"
    try:
        return _validate(data, origin)
    except ValueError as exc:
        raise ConfigError(f"bad configuration ({origin}): {exc}") from None
