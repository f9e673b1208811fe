"""Batch scoring of a list of proposed projects (CSV, Parquet or a workbook) with the champion model.

The scoring itself is the pipeline's (:func:`recommender.pipeline.score_candidates`); this module
owns the file: reading, validating and writing it.

Three streaming passes over the file, each chunk at a time:

1. **validate** everything (columns, countries, bloc, products, duplicates, empty file) before any
   work, reading countries as codes or names and products as codes at any level, sections or names
   (once per distinct value); problems raise :class:`DataValidationError` listing the rows, and
   nothing is written;
2. **score**: features and scores are computed once per distinct key (importer, supplier,
   product) or (partner_a, partner_b, product), so a million rows cost a few thousand feature rows;
3. **write** the input columns untouched and in order, then what each was read as
   (``matched_<column>``, names, ``match``, ``country_match``), then ``score``, ``rank`` (1 = best
   in the file), ``percentile`` (against every candidate of that year), ``reasons`` and
   ``model_version``, to a temporary file renamed into place at the end (a workbook: a sheet of the
   task and an About sheet, written whole).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.sectors import product_label
from models.engine import Engine
from models.tasks import Task, as_task
from recommender import countries
from recommender.config import MAX_ROWS_ENV, Config, max_rows
from recommender.errors import DataValidationError, Problem, ProblemCollector, RecommenderError
from recommender.outputs.about import about_rows
from recommender.outputs.files import atomic_output, check_output
from recommender.outputs.writers import neutralise_batch, write_sheets
from recommender.pipeline import (
    ProductMatcher,
    Scored,
    YearScorer,
    explain,
    load_model,
    open_bank,
)
from recommender.tables import Progress, file_sha256, is_table_file, read_batches
from recommender.workbooks import is_workbook, source_label

OUTPUT_COLUMNS = ["score", "probability", "rank", "rank_in_query", "percentile", "reasons", "model_version"]
"""What ``score`` adds, documented in the README: ``score`` the model's raw score (comparable only within a
query), ``probability`` the calibrated probability that the candidate turns out relevant, ``rank`` the
rank by probability across the whole file (1 = best), ``rank_in_query`` the model's order among the
file's rows of the same query (importer; or partner pair), ``percentile`` of the score among every
candidate of that year, ``reasons``, ``model_version``."""


def read_chunks(path: Path, task: Task, chunk_rows: int = 250_000, sheet: str | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the projects file (:func:`recommender.tables.read_batches`): key columns as
    text, pass-through columns as they are (all text in a CSV; Parquet keeps its types)."""
    if not is_table_file(path):
        raise RecommenderError(f"{path}: projects must be a .csv, .parquet or .xlsx (.xls, .ods) file")
    yield from read_batches(path, text=set(task.input_columns), chunk_rows=chunk_rows, sheet=sheet,
                            codes=task.input_columns)


def _distinct(column: pa.Array) -> tuple[np.ndarray, list]:
    """Each cell's index into the column's distinct values (-1 where missing), and those values.

    Validation then works on the few distinct values (countries, products) and on integer codes,
    never on a million strings.
    """
    encoded = pc.dictionary_encode(column)
    return pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64), encoded.dictionary.to_pylist()


def _pick(per_value: np.ndarray, index: np.ndarray, missing) -> np.ndarray:
    """``per_value[index]``, with ``missing`` where the index is -1."""
    return np.append(per_value, missing)[index]


@dataclass
class Matched:
    """What each distinct written value of a key column was read as: bank code and how (``exact``, ``by-name`` …)."""

    codes: dict[str, str] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)

    def columns(self, column: pa.Array) -> tuple[pa.Array, pa.Array]:
        """The matched code and the how of every cell of ``column`` (computed on its distinct values)."""
        index, values = _distinct(column)
        picks = pa.array(np.where(index < 0, 0, index))
        def take(table: dict[str, str]) -> pa.Array:
            return pc.take(pa.array([table.get(v, "") for v in values] or [""], pa.string()), picks)
        return take(self.codes), take(self.how)


@dataclass
class Validation:
    """What pass 1 learnt: row count, duplicate count, warnings and each row's key code."""

    rows: int = 0
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    codes: np.ndarray | None = None  # per row: index into ``keys``
    keys: pd.DataFrame | None = None  # distinct normalised keys
    matched: dict[str, Matched] = field(default_factory=dict)  # per key column: written value → code, how


def _match_values(values: list, resolve, index: np.ndarray, column: str, matched: Matched,
                  problems: ProblemCollector, offset: int) -> list[str | None]:
    """Resolve each distinct value once (``resolve`` raises :class:`LookupError` with the choices); a value
    that cannot be resolved is a problem on every row holding it."""
    out: list[str | None] = []
    for k, value in enumerate(values):
        if value in matched.codes:
            out.append(matched.codes[value])
            continue
        try:
            code, how = resolve(value)
        except LookupError as exc:
            problems.add_mask(f"{column}: {exc}", index == k, offset)
            out.append(None)
            continue
        matched.codes[value], matched.how[value] = code, how
        out.append(code)
    return out


def validate(path: Path, task: Task, cfg: Config, products: list[str] | ProductMatcher, sheet: str | None = None) -> Validation:
    """Check the whole file, encoding each row's key; raise :class:`DataValidationError` on any problem.

    Countries are read as codes, numeric codes or names (:func:`recommender.countries.lookup`) and
    products as codes at any level, sections or names (:class:`~recommender.pipeline.matching.ProductMatcher`),
    once per distinct value; unordered pairs (joint projects) are ordered a < b. Nothing is written
    when a problem is found.
    """
    cols = task.input_columns
    problems = ProblemCollector()
    matcher = products if isinstance(products, ProductMatcher) else ProductMatcher(products)
    products = matcher.sorted_codes
    members = list(cfg.bloc.members)
    member_index = {m: i for i, m in enumerate(members)}
    product_index = pd.Index(products)
    out = Validation(matched={c: Matched() for c in cols})
    parts: list[np.ndarray] = []
    offset, limit = 0, max_rows()
    for batch in read_chunks(path, task, sheet=sheet):
        if offset + batch.num_rows > limit:
            raise RecommenderError(f"{path}: more than {limit:,} rows, the most one scoring request takes ({MAX_ROWS_ENV}; "
                                   "the scoring benchmark needs 1.3 GB per million rows): split the list into files of at "
                                   f"most {limit:,} rows, or raise {MAX_ROWS_ENV} if this machine has the memory. Nothing was written")
        if offset == 0:
            missing = [c for c in cols if c not in batch.schema.names]
            if missing:
                raise DataValidationError(str(path), [Problem(f"required column(s) {missing} missing; file has {batch.schema.names}", count=0)],
                                          hint="import-substitution needs importer, supplier, product; joint-projects needs "
                                               "partner_a, partner_b, product; diversification needs country, product")
        country_codes, canonical = [], []
        for c in cols[:-1]:  # the country columns (one for diversification, two for the pair tasks)
            index, values = _distinct(batch.column(c))
            canon = _match_values(values, countries.lookup, index, c, out.matched[c], problems, offset)
            problems.add_mask(f"{c} missing (empty cell)", index < 0, offset)
            unknown = _pick(np.array([v is None for v in canon], dtype=bool), index, False)
            code = _pick(np.array([member_index.get(v, -1) for v in canon], dtype=np.int64), index, -1)
            problems.add_mask(f"{c} outside the bloc {cfg.bloc.name} ({', '.join(members)})", (index >= 0) & ~unknown & (code < 0), offset)
            country_codes.append(code)
            canonical.append((index, canon))
        if len(canonical) == 2:  # the two columns' codes compared as integers: each code's place among both columns' codes
            place = {v: i for i, v in enumerate(sorted({v for _, canon in canonical for v in canon if v is not None}))}
            (ia, ca), (ib, cb) = canonical
            a = _pick(np.array([place.get(v, -1) for v in ca], dtype=np.int64), ia, -1)
            b = _pick(np.array([place.get(v, -1) for v in cb], dtype=np.int64), ib, -1)
            present = (a >= 0) & (b >= 0)
            problems.add_mask("the two countries are the same", present & (a == b), offset)
        index, values = _distinct(batch.column("product"))
        problems.add_mask("product missing (empty cell)", index < 0, offset)
        codes = _match_values(values, matcher.resolve, index, "product", out.matched["product"], problems, offset)
        prod = _pick(product_index.get_indexer([v if v is not None else "" for v in codes]), index, -1)
        if task.unordered_pair:  # (a, b) and (b, a) are one pair, stored a < b (Task.normalise_pairs)
            first, second = country_codes
            swap = present & (a > b)
            country_codes = [np.where(swap, second, first), np.where(swap, first, second)]
        pair = country_codes[0]
        for code in country_codes[1:]:
            pair = pair * len(members) + code
        parts.append(pair * max(len(products), 1) + prod)
        offset += batch.num_rows
    out.rows = offset
    where = source_label(path, sheet) if is_workbook(path) else str(path)
    if offset == 0:
        raise DataValidationError(where, [Problem("the file has no project rows", count=0)])
    if problems:
        raise DataValidationError(where, problems.problems, hint="fix or remove these rows and score again: countries as "
                                  "ISO3 codes or names, products as HS codes (2, 4 or 6 digits), sections or names")
    uniques, out.codes = np.unique(np.concatenate(parts), return_inverse=True)
    out.duplicates = offset - len(uniques)
    pair, prod = np.divmod(uniques, max(len(products), 1))
    m = np.array(members, dtype=object)
    keys: dict[str, np.ndarray] = {}
    for c in reversed(cols[:-1]):
        pair, code = np.divmod(pair, len(members))
        keys[c] = m[code]
    out.keys = pd.DataFrame({**{c: keys[c] for c in cols[:-1]}, "product": np.asarray(products, dtype=object)[prod]})
    if out.duplicates:
        out.warnings.append(f"{out.duplicates:,} row(s) repeat a {'/'.join(cols)} combination already in the file; each is scored")
    rolled = sorted(v for v, how in out.matched["product"].how.items() if how != "exact")
    if rolled:
        out.warnings.append(f"{len(rolled):,} product value(s) were matched by name or rolled up to the bank's codes "
                            f"(e.g. {rolled[0]!r} → {out.matched['product'].codes[rolled[0]]}); see matched_product and match")
    return out


def _matched_columns(batch: pa.RecordBatch, task: Task, check: Validation, classification: str,
                     names: dict[str, str]) -> dict[str, pa.Array]:
    """What each row's countries and product were read as: ``matched_<column>`` codes, country and product
    names, ``match`` (the product: exact, rolled-up, by-name) and ``country_match`` (code, numeric, by-name;
    one per country column, in order)."""
    out: dict[str, pa.Array] = {}
    hows = []
    for c in task.input_columns:
        code, how = check.matched[c].columns(batch.column(c))
        out[f"matched_{c}"] = code
        if c != "product":
            out[f"{c}_name"] = _map_text(code, countries.country_name)
            hows.append(how)
    out["product_name"] = _map_text(out["matched_product"], lambda p: product_label(p, classification, names))
    out["match"] = check.matched["product"].columns(batch.column("product"))[1]
    out["country_match"] = hows[0] if len(hows) == 1 else pc.binary_join_element_wise(*hows, ", ")
    return out


def _map_text(column: pa.Array, fn) -> pa.Array:
    """``fn`` of each distinct value of a text column, taken back to every cell."""
    index, values = _distinct(column)
    return pc.take(pa.array([fn(v) for v in values] or [""], pa.string()), pa.array(np.where(index < 0, 0, index)))


def _rank_desc(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """1 = best: descending ``primary``, ties broken by descending ``secondary``, then by file order."""
    order = np.lexsort((np.arange(len(primary)), -secondary, -np.nan_to_num(primary, nan=-np.inf)))
    rank = np.empty(len(primary), dtype=np.int64)
    rank[order] = np.arange(1, len(primary) + 1)
    return rank


@dataclass
class ScoreResult:
    output: Path
    rows: int
    model_version: str
    year: int
    warnings: list[str]
    input_sha256: str
    run_id: str | None = None


def score_file(cfg: Config, task: Task | str, path: str | Path, output: str | Path, *, year: int | None = None,
               model_uri: str | None = None, reasons: bool = True, progress: Progress | None = None,
               track: bool = True, engine: Engine | None = None, sheet: str | None = None,
               scorer: YearScorer | None = None, label: str | None = None) -> ScoreResult:
    """Validate, score and write a projects file. See the module docstring for the passes.

    ``scorer``: a :class:`~recommender.pipeline.YearScorer` already holding the model and the year's
    candidates (a resident scoring service's); ``year`` and ``model_uri`` are then its. ``label``: how the
    MLflow run names the input (default its absolute path).
    """
    path, output = Path(path), Path(output)
    task = as_task(task)  # unknown task → the standard error
    if not path.is_file():
        raise RecommenderError(f"{path} is a folder: name the projects file in it" if path.is_dir() else f"{path}: no such file")
    check_output(output)
    if output.resolve() == path.resolve():
        raise RecommenderError("--output must differ from the input file")
    if scorer is None:
        model = load_model(cfg, task, model_uri)  # a refused or missing model fails before any work
        check = validate(path, model.task, cfg, ProductMatcher.for_bank(open_bank(cfg)), sheet=sheet)
        scorer = YearScorer(cfg, model, year, engine)
    else:
        check = validate(path, scorer.model.task, cfg, scorer.matcher, sheet=sheet)
    model, task, bank, names = scorer.model, scorer.model.task, scorer.bank, scorer.names  # the task with its trained options

    # distinct keys → features, scores and reasons, computed once
    scored: Scored = scorer.scored(check.keys, engine)
    table = scored.rows  # same order as check.keys
    key_scores = table["score"].to_numpy()
    key_reasons = np.asarray(explain(model.booster, table, model.features, task, scored.sectors), dtype=object) \
        if reasons else np.full(len(table), "", dtype=object)
    scores = key_scores[check.codes]
    probability = table["probability"].to_numpy()[check.codes]
    if not scored.calibrated:
        check.warnings.append(f"model {scored.version} has no probability calibration (trained before it existed): "
                              "probability is empty and rank orders raw scores, which are comparable only within a query")
    rank = _rank_desc(probability if scored.calibrated else scores, scores)
    query = task.normalise_pairs(check.keys)[[c for c in task.group if c != "year"]]
    row_query = query.groupby(list(query.columns), sort=False).ngroup().to_numpy()[check.codes]
    rank_in_query = pd.Series(-scores).groupby(row_query).rank(method="first").astype(np.int64).to_numpy()
    reference = np.sort(scored.candidates["score"].to_numpy()) if len(scored.candidates) else np.sort(key_scores)
    percentile = np.round(100.0 * np.searchsorted(reference, scores, side="right") / max(len(reference), 1), 2)

    # pass 2: input columns untouched + what they were matched to + results, to a temporary file renamed into place
    version = pa.scalar(scored.version, pa.string())
    csv = output.suffix.lower() == ".csv"

    def batches() -> Iterator[pa.RecordBatch]:
        start = 0
        for batch in read_chunks(path, task, sheet=sheet):
            stop = start + batch.num_rows
            matched = _matched_columns(batch, task, check, bank.classification, names)
            taken = set(OUTPUT_COLUMNS) | set(matched)
            columns = [f"input_{c}" if c in taken else c for c in batch.schema.names]
            added = {**matched, "score": scores[start:stop], "probability": probability[start:stop], "rank": rank[start:stop],
                     "rank_in_query": rank_in_query[start:stop], "percentile": percentile[start:stop],
                     "reasons": pa.array(key_reasons[check.codes[start:stop]], pa.string()),
                     "model_version": pa.repeat(version, batch.num_rows)}
            out = pa.RecordBatch.from_arrays([*batch.columns, *added.values()], names=[*columns, *added])
            yield neutralise_batch(out) if csv else out
            if progress:
                progress(batch.num_rows)
            start = stop

    if output.suffix.lower() == ".xlsx":  # a workbook is written whole: the scored projects, then the About sheet
        frame = pa.Table.from_batches(list(batches())).to_pandas()
        write_sheets(output, [(task.name, frame)], about_rows(cfg, bank, model_versions=[scored.version], year=scored.year,
                                                               extra=[("task", task.name), ("input", path.name)]))
    else:
        writer = None
        with atomic_output(output) as tmp:
            try:
                for out in batches():
                    if writer is None:
                        schema = out.schema
                        writer = pacsv.CSVWriter(tmp, schema) if csv else pq.ParquetWriter(tmp, schema)
                    writer.write_batch(out.cast(schema))
            finally:
                if writer is not None:
                    writer.close()
    result = ScoreResult(output, check.rows, scored.version, scored.year, check.warnings, file_sha256(path))
    if track:
        result.run_id = record_scoring_run(cfg, task.name, label or str(path.absolute()), result)
    return result


def record_scoring_run(cfg: Config, task: str, label: str, result: ScoreResult, user: str | None = None) -> str | None:
    """Record the scoring run in MLflow (experiment ``<task>-scoring``): input hash, output, model version.

    Scoring needs only READ on the model. On a team server a user who may not write runs into the
    scoring experiment (whoever scored first created it and owns it) still gets the scored file; the
    run is not recorded and a warning says who can change that. Nothing is half-recorded: the refusal
    comes at the run's creation.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    name = f"{task}-scoring"
    exp = cfg.store.experiment_id(name, f"Batch scoring runs of the {task} task.")
    try:
        return _record_scoring(cfg, exp, task, label, result, user)
    except MlflowException as exc:
        if getattr(exc, "error_code", None) != "PERMISSION_DENIED":
            raise
        user = user or os.environ.get("MLFLOW_TRACKING_USERNAME", "you")
        result.warnings.append(f"the scoring was not recorded in MLflow: user {user!r} may read the model but not add runs "
                               f"to the experiment {name!r}; an admin can allow it with `recommender users grant {user} "
                               f"--experiment {name} --permission EDIT` (the scored file is complete)")
        mlflow.end_run()
        return None


def _record_scoring(cfg: Config, exp: str, task: str, label: str, result: ScoreResult, user: str | None) -> str:
    import mlflow

    with cfg.store.active(), mlflow.start_run(experiment_id=exp, run_name=f"score {Path(label).name} · {cfg.bloc.name}",
                          description=f"Scored {result.rows:,} projects from {Path(label).name} with {result.model_version} (year {result.year}).",
                          tags={"task": task, "bloc": cfg.bloc.name, "model_version": result.model_version,
                                "input_sha256": result.input_sha256,
                                **({"mlflow.user": user} if user else {})}) as run:  # a service's run is its analyst's
        mlflow.log_params({"input": label, "rows": result.rows, "year": result.year,
                           "input_sha256": result.input_sha256, "model_version": result.model_version})
        if result.output.stat().st_size <= 200 * 1024**2:
            mlflow.log_artifact(str(result.output))
        else:
            mlflow.set_tag("output_path", str(result.output.absolute()))
        return run.info.run_id
