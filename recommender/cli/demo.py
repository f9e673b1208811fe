"""``recommender demo``: the main job on the embedded synthetic world."""

from __future__ import annotations

from typing import Annotated

import typer

from recommender.bank import DataBank
from recommender.cli._common import config, console
from recommender.cli.bank import print_info


def demo(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world")] = 0,
    size: Annotated[str, typer.Option(help="World size: tiny (seconds) or demo")] = "demo",
) -> None:
    """Build the synthetic world, ingest it and show the data bank (idempotent)."""
    from recommender.demo import build_demo_bank
    from recommender.synthetic import WorldSpec

    presets = {"tiny": WorldSpec.tiny, "demo": WorldSpec.demo}
    if size not in presets:
        raise typer.BadParameter(f"--size must be one of {sorted(presets)}; got {size!r}")
    spec = presets[size](seed=seed)

    cfg = config(ctx)
    console.print(f"[bold]1.[/] synthetic world (seed {seed}) → data bank at {cfg.bank_dir}")
    for line in build_demo_bank(cfg, spec=spec):
        console.print(f"   {line}")
    print_info(DataBank(cfg.bank_dir).info())
