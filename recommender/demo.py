"""The demo as library functions (the CLI and notebooks call them): build the synthetic world's bank, train or reuse."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from models.champion import model_name, reusable_champion
from recommender.bank import DataBank
from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade
from recommender.bank.synthetic import WorldSpec, generate_world
from recommender.config import Config
from recommender.pipeline import open_bank, train_task


def build_demo_bank(cfg: Config, *, seed: int = 0, spec: WorldSpec | None = None) -> Iterator[str]:
    """Generate the synthetic world, write its files and ingest them; yields progress lines.

    Idempotent: the files are byte-identical for a seed, so a second run changes nothing.
    """
    bank = DataBank(cfg.bank_dir)
    bank.require_writable()
    spec = spec or WorldSpec.demo(seed=seed)
    world = generate_world(spec)
    folder = cfg.home / "synthetic" / f"seed-{spec.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.home) as tmp:
        paths = world.write(tmp)
        for name, path in paths.items():  # keep the files; same content → same hash → no-op ingest
            target = folder / Path(path).name
            if not target.exists() or target.read_bytes() != Path(path).read_bytes():
                Path(path).replace(target)
            paths[name] = target
    yield f"world: {spec.n_countries} countries, {spec.n_products} products, {spec.n_years} years ({spec.years[0]}–{spec.years[-1]})"
    for name, fn in (("trade", ingest_trade), ("capacity", ingest_capacity), ("geography", ingest_geography)):
        result = fn(bank, paths[name])
        state = "unchanged" if result.unchanged else f"{result.source['rows']:,} rows"
        yield f"ingest {name}: {state}"


def train_or_reuse(cfg: Config, task: str, *, horizon: int, log) -> tuple[str, str]:
    """Train ``task`` unless its champion was trained on this very bank with these parameters.

    Returns the run id to report and a sentence saying what happened.
    """
    params = {"horizon": horizon, "bloc": cfg.bloc.name, "seed": 0}
    run_id = reusable_champion(cfg.store, model_name(task, cfg.bloc.name), open_bank(cfg).manifest_hash(), params)
    if run_id is not None:
        return run_id, f"already trained on this data bank: reusing the champion (run {run_id})"
    outcome = train_task(cfg, task, horizon=horizon, log=log)
    return outcome.record.run_id, outcome.record.decision
