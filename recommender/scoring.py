"""Batch scoring of a list of proposed projects (CSV or Parquet) with the champion model.

Three streaming passes over the file, each chunk at a time:

1. **validate** everything (columns, countries, bloc, products, duplicates, empty file) before any
   work; problems raise :class:`DataValidationError` listing the rows and nothing is written;
2. **score**: features and scores are computed once per distinct key (importer, supplier,
   product) or (partner_a, partner_b, product), so a million rows cost a few thousand feature rows;
3. **write** the input columns untouched and in order, plus ``score``, ``rank`` (1 = best in the
   file), ``percentile`` (against every candidate of that year), ``reasons`` and
   ``model_version``, to a temporary file renamed into place at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.tasks import IMPORT_SUBSTITUTION, SPECS, get_spec
from recommender import countries
from recommender.bank import DataBank
from recommender.config import Config
from recommender.errors import DataValidationError, Problem, RecommenderError
from recommender.explain import explain
from recommender.ingest import ProblemCollector, file_sha256
from recommender.output import neutralise_formulas
from recommender.pipeline import Scored, score_candidates

OUTPUT_COLUMNS = ["score", "rank", "percentile", "reasons", "model_version"]
Progress = Callable[[int], None]


def required_columns(task: str) -> list[str]:
    return ["importer", "supplier", "product"] if task == IMPORT_SUBSTITUTION else ["partner_a", "partner_b", "product"]


def read_chunks(path: Path, chunk_rows: int = 250_000) -> Iterator[pd.DataFrame]:
    """Every column as text (codes keep leading zeros), in chunks."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield frame.astype({c: "str" for c in frame.columns if c in {"importer", "supplier", "partner_a", "partner_b", "product"}})
    elif path.suffix.lower() in {".csv", ".txt"}:
        yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
    else:
        raise RecommenderError(f"{path}: projects must be a .csv or .parquet file")


def _keys(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Normalised key columns: upper-case ISO3 (aliases applied); joint-project partners ordered."""
    cols = required_columns(task)
    keys = pd.DataFrame({c: frame[c].astype(str).str.strip() for c in cols})
    for c in cols[:2]:
        keys[c] = keys[c].str.upper().map(countries.canonical)
    if task != IMPORT_SUBSTITUTION:
        a, b = keys["partner_a"].to_numpy(), keys["partner_b"].to_numpy()
        keys["partner_a"], keys["partner_b"] = np.where(a < b, a, b), np.where(a < b, b, a)
    return keys


@dataclass
class Validation:
    rows: int = 0
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)


def validate(path: Path, task: str, cfg: Config, products: set[str]) -> Validation:
    """Check the whole file; raise :class:`DataValidationError` (nothing written) on any problem."""
    cols = required_columns(task)
    problems = ProblemCollector()
    seen: dict[tuple, int] = {}
    out = Validation()
    offset = 0
    known = countries.known_codes()
    members = set(cfg.bloc.members)
    for chunk in read_chunks(path):
        if offset == 0:
            missing = [c for c in cols if c not in chunk.columns]
            if missing:
                raise DataValidationError(str(path), [Problem(f"required column(s) {missing} missing; file has {list(chunk.columns)}", count=0)],
                                          hint="import-substitution needs importer, supplier, product; joint-projects needs partner_a, partner_b, product")
        keys = _keys(chunk, task)
        for c in cols[:2]:
            bad = ~keys[c].isin(known)
            problems.add_mask(f"unknown country code in {c} (not ISO 3166 alpha-3)", bad.to_numpy(), offset)
            problems.add_mask(f"{c} outside the bloc {cfg.bloc.name} ({', '.join(cfg.bloc.members)})",
                              (~bad & ~keys[c].isin(members)).to_numpy(), offset)
        problems.add_mask("the two countries are the same", (keys[cols[0]] == keys[cols[1]]).to_numpy(), offset)
        problems.add_mask("product not in the data bank (check the code and its leading zeros)",
                          (~keys["product"].isin(products)).to_numpy(), offset)
        for i, key in enumerate(map(tuple, keys.to_numpy())):
            if key in seen:
                out.duplicates += 1
            else:
                seen[key] = offset + i
        offset += len(chunk)
    out.rows = offset
    if offset == 0:
        raise DataValidationError(str(path), [Problem("the file has no project rows", count=0)])
    if problems:
        raise DataValidationError(str(path), problems.problems, hint="fix or remove these rows and score again")
    if out.duplicates:
        out.warnings.append(f"{out.duplicates:,} row(s) repeat a {'/'.join(cols)} combination already in the file; each is scored")
    return out


@dataclass
class ScoreResult:
    output: Path
    rows: int
    model_version: str
    year: int
    warnings: list[str]
    input_sha256: str
    run_id: str | None = None


def score_file(cfg: Config, task: str, path: str | Path, output: str | Path, *, year: int | None = None,
               model_uri: str | None = None, reasons: bool = True, progress: Progress | None = None,
               track: bool = True) -> ScoreResult:
    """Validate, score and write a projects file. See the module docstring for the passes."""
    path, output = Path(path), Path(output)
    if task not in SPECS:
        get_spec(task)  # raises the standard error
    if not path.is_file():
        raise RecommenderError(f"{path}: no such file")
    if output.suffix.lower() not in {".csv", ".parquet"}:
        raise RecommenderError(f"--output must end in .csv or .parquet; got {output.name!r}")
    if output.resolve() == path.resolve():
        raise RecommenderError("--output must differ from the input file")
    bank = DataBank(cfg.bank_dir)
    products = set(bank.read("products", columns=["product"])["product"]) if bank.has("products") else set()
    check = validate(path, task, cfg, products)

    # distinct keys → features, scores and reasons, computed once
    keys = pd.concat([_keys(chunk, task) for chunk in read_chunks(path)], ignore_index=True).drop_duplicates()
    scored: Scored = score_candidates(cfg, task, keys, year=year, model_uri=model_uri)
    table = scored.rows
    if reasons:
        table = table.assign(reasons=explain(scored.model, table, scored.features, task, scored.classification))
    else:
        table = table.assign(reasons="")
    cols = required_columns(task)
    lookup = table.set_index(cols)[["score", "reasons"]]
    lookup = lookup[~lookup.index.duplicated()]
    reference = np.sort(scored.candidates["score"].to_numpy()) if len(scored.candidates) else np.sort(table["score"].to_numpy())

    # pass 2: scores per row (kept), rank over the file
    scores = np.concatenate([lookup["score"].reindex(pd.MultiIndex.from_frame(_keys(c, task))).to_numpy() for c in read_chunks(path)])
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)
    percentile = 100.0 * np.searchsorted(reference, scores, side="right") / max(len(reference), 1)

    # pass 3: write input columns + results, atomically
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    writer = None
    try:
        start = 0
        for n, chunk in enumerate(read_chunks(path)):
            stop = start + len(chunk)
            k = pd.MultiIndex.from_frame(_keys(chunk, task))
            out = chunk.copy()
            for col in OUTPUT_COLUMNS:
                if col in out.columns:
                    out = out.rename(columns={col: f"input_{col}"})
            out["score"] = scores[start:stop]
            out["rank"] = rank[start:stop]
            out["percentile"] = np.round(percentile[start:stop], 2)
            out["reasons"] = lookup["reasons"].reindex(k).to_numpy()
            out["model_version"] = scored.version
            if output.suffix.lower() == ".csv":
                neutralise_formulas(out).to_csv(tmp, mode="w" if n == 0 else "a", header=n == 0, index=False)
            else:
                batch = pa.Table.from_pandas(out, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, batch.schema)
                writer.write_table(batch.cast(writer.schema))
            if progress:
                progress(len(chunk))
            start = stop
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, output)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    result = ScoreResult(output, check.rows, scored.version, scored.year, check.warnings, file_sha256(path))
    if track:
        result.run_id = _track(cfg, task, path, result)
    return result


def _track(cfg: Config, task: str, path: Path, result: ScoreResult) -> str:
    """Record the scoring run in MLflow (experiment ``<task>-scoring``): input hash, output, model version."""
    import mlflow

    from models.tracking import client_for, experiment_id

    client = client_for(cfg)
    exp = experiment_id(client, f"{task}-scoring", cfg)
    with mlflow.start_run(experiment_id=exp, run_name=f"score {path.name} · {cfg.bloc.name}",
                          description=f"Scored {result.rows:,} projects from {path.name} with {result.model_version} (year {result.year}).",
                          tags={"task": task, "bloc": cfg.bloc.name, "model_version": result.model_version,
                                "input_sha256": result.input_sha256}) as run:
        mlflow.log_params({"input": str(path.absolute()), "rows": result.rows, "year": result.year,
                           "input_sha256": result.input_sha256, "model_version": result.model_version})
        if result.output.stat().st_size <= 200 * 1024**2:
            mlflow.log_artifact(str(result.output))
        else:
            mlflow.set_tag("output_path", str(result.output.absolute()))
        return run.info.run_id
