"""``perpscope config``: show the configuration in force."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, state

app = typer.Typer(help="Show the configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Print the validated configuration and where it came from."""
    import os
    from dataclasses import fields

    from perpscope.alerts.notify import channel_id, notify_urls
    from perpscope.config import default_config_path

    cfg = state(ctx).config
    channels = [channel_id(u) for u in notify_urls(cfg.alerts.notify, os.environ)]
    record = {
        "source": cfg.source,
        "default_config_file": str(default_config_path()),
        "store.path": str(cfg.store.path),
        "store.vacuum_retention_h": cfg.store.vacuum_retention_h,
        "workbench.max_rows": cfg.workbench.max_rows,
        "workbench.timeout_s": cfg.workbench.timeout_s,
        "workbench.memory_limit": cfg.workbench.memory_limit,
        # channels by scheme#hash: their URLs hold tokens and are never printed
        "alerts.notify": ", ".join(channels) or "none",
        "alerts.rules": ", ".join(r.name for r in cfg.alerts.rules if r.enabled) or "none",
        "heatmap": ", ".join(
            f"{f.name}={getattr(cfg.heatmap, f.name)}"
            for f in fields(cfg.heatmap)
            if getattr(cfg.heatmap, f.name) is not None
        )
        or "the scored defaults",
    }
    emit(record, fmt.value, title="configuration")
