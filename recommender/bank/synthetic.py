"""A seeded synthetic world: the project's embedded default data.

The generator follows the capabilities view of economic complexity (Hidalgo & Hausmann 2009):

* **Capabilities** sit on a ring of ``n_capabilities`` positions; neighbours on the ring are
  related. Each **product** needs a small set of capabilities drawn around a centre on the ring;
  products are numbered into HS-like six-digit codes whose chapter follows the ring, so nearby
  codes are related products.
* **Countries** (real ISO3 codes, the SCO members first) have a size, a location and an initial
  set of capabilities around a centre of their own. Each year a country acquires a missing
  capability with a probability that grows with the share of its ring neighbours it already
  holds (so new capabilities are *near* existing ones and relatedness predicts diversification)
  and rarely loses one.
* **Output** of product p in country c is ``size_c · demand_p · a_cp · exp(-λ · missing_cp)``,
  where ``missing_cp`` counts the capabilities p needs and c lacks and ``a_cp`` is a persistent
  log-normal productivity.
* **Bilateral flows** follow a gravity model times comparative advantage with log-normal noise:
  ``X[i→j,p] = supply_ip · D_jp · dist_ij^(-θ) · e^(κ·contig_ij) / Σ_k D_kp dist_ik^(-θ) · ε``;
  flows under ``min_flow_usd`` are not reported (as in BACI, which has no zeros).
* **Capacity** by ISIC aggregate is value added consistent with output (a share of the output of
  the sector's products plus a domestic, non-traded part), alongside GDP, capital stock and
  employment.

The latent truth (capabilities by country and year, product requirements) stays on the
:class:`World` so tests can check the generator behaves as designed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pycountry

from features.sectors import chapter_table
from recommender.config import BLOCS

_CHAPTERS = [c for c in chapter_table()["chapter"] if c not in {"77", "98", "99"}]


@dataclass(frozen=True)
class WorldSpec:
    """Size and behaviour of a synthetic world. Presets: :meth:`tiny`, :meth:`demo`, :meth:`baci`."""

    n_countries: int = 40
    n_products: int = 300
    n_capabilities: int = 48
    first_year: int = 2000
    n_years: int = 16
    seed: int = 0
    capabilities_per_product: float = 3.0
    missing_penalty: float = 3.0  # λ
    acquisition_rate: float = 0.22
    loss_rate: float = 0.01
    distance_elasticity: float = 1.0  # θ
    contiguity_effect: float = 0.5  # κ
    noise_sigma: float = 0.6
    min_flow_usd: float = 10_000.0

    @classmethod
    def tiny(cls, seed: int = 0) -> WorldSpec:
        """For unit tests: builds in well under a second."""
        return cls(n_countries=16, n_products=40, n_capabilities=16, n_years=10, seed=seed)

    @classmethod
    def demo(cls, seed: int = 0) -> WorldSpec:
        return cls(n_countries=40, n_products=300, n_capabilities=48, n_years=16, seed=seed)

    @classmethod
    def baci(cls, seed: int = 0, n_years: int = 25) -> WorldSpec:
        """BACI scale: 200 countries, 5,000 six-digit products, 25 years."""
        return cls(n_countries=200, n_products=5000, n_capabilities=120, n_years=n_years, seed=seed,
                   capabilities_per_product=4.0, min_flow_usd=5_000.0)

    @property
    def years(self) -> list[int]:
        return list(range(self.first_year, self.first_year + self.n_years))


@dataclass
class World:
    """Countries, products, latent capabilities and (lazily) trade and capacity tables."""

    spec: WorldSpec
    countries: pd.DataFrame  # iso3, size, lat, lon, region, centre
    products: pd.DataFrame  # product, chapter, centre, demand
    requirements: np.ndarray  # products × capabilities, bool
    capabilities: np.ndarray  # years × countries × capabilities, bool
    productivity: np.ndarray  # countries × products, log-normal
    distance_km: np.ndarray  # countries × countries
    contiguous: np.ndarray  # countries × countries, bool
    common_language: np.ndarray  # countries × countries, bool
    gdp: np.ndarray  # years × countries, USD
    _trade: pd.DataFrame | None = field(default=None, repr=False)

    # ---- latent quantities -------------------------------------------------------------
    def missing(self, year_index: int) -> np.ndarray:
        """countries × products: how many needed capabilities each country lacks."""
        lacking = ~self.capabilities[year_index]
        return lacking.astype(np.int32) @ self.requirements.T.astype(np.int32)

    def output(self, year_index: int) -> np.ndarray:
        """countries × products output in USD (before trade)."""
        spec = self.spec
        size = self.gdp[year_index][:, None]
        demand = self.products["demand"].to_numpy()[None, :]
        return 5.0 * size * demand / demand.shape[1] * self.productivity * np.exp(-spec.missing_penalty * self.missing(year_index))

    # ---- observable tables -------------------------------------------------------------
    def flows_by_year(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(year, arrays)``: each year's flows as exporter, importer and product *indices* (into
        :attr:`countries` and :attr:`products`), value_usd and quantity; no strings, for BACI-scale worlds."""
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 1])
        n_c, n_p = len(self.countries), len(self.products)
        resistance = self.distance_km ** (-spec.distance_elasticity) * np.exp(spec.contiguity_effect * self.contiguous)
        np.fill_diagonal(resistance, 0.0)
        taste = rng.lognormal(0.0, 0.5, size=(n_c, n_p))
        price = rng.lognormal(7.0, 1.0, size=n_p)  # USD per ton
        chunk = max(1, int(2e7 // (n_c * n_c)))
        for t, year in enumerate(spec.years):
            supply = 0.6 * self.output(t)
            demand = (self.gdp[t] ** 0.9)[:, None] * taste  # importers × products
            parts: list[tuple[np.ndarray, ...]] = []
            for lo in range(0, n_p, chunk):
                hi = min(n_p, lo + chunk)
                # pull[i, j, p] = D_jp · R_ij ; normalised over j for each (i, p)
                pull = resistance[:, :, None] * demand[None, :, lo:hi]
                pull /= pull.sum(axis=1, keepdims=True)
                flows = supply[:, None, lo:hi] * pull
                flows *= rng.lognormal(-spec.noise_sigma**2 / 2, spec.noise_sigma, size=flows.shape)
                i, j, p = np.nonzero(flows >= spec.min_flow_usd)
                value = np.round(flows[i, j, p], 0)
                parts.append((i, j, lo + p, value, np.round(value / price[lo + p], 3)))
            yield int(year), {name: np.concatenate([part[k] for part in parts])
                              for k, name in enumerate(("exporter", "importer", "product", "value_usd", "quantity"))}

    def trade_by_year(self) -> Iterator[pd.DataFrame]:
        """Yield each year's flows: year, exporter, importer, product, value_usd, quantity."""
        iso = self.countries["iso3"].to_numpy()
        codes = self.products["product"].to_numpy()
        for year, f in self.flows_by_year():
            yield pd.DataFrame({"year": year, "exporter": iso[f["exporter"]], "importer": iso[f["importer"]],
                                "product": codes[f["product"]], "value_usd": f["value_usd"], "quantity": f["quantity"]})

    @property
    def trade(self) -> pd.DataFrame:
        """All years' flows (cached). For BACI-scale worlds prefer :meth:`trade_by_year`."""
        if self._trade is None:
            self._trade = pd.concat(list(self.trade_by_year()), ignore_index=True)
        return self._trade

    def capacity(self) -> pd.DataFrame:
        """Long capacity table: year, country, sector, indicator, value."""
        from features.sectors import product_sectors

        spec = self.spec
        rng = np.random.default_rng([spec.seed, 2])
        sectors = product_sectors(self.products["product"])["sector"].fillna("D").to_numpy()
        iso = self.countries["iso3"].to_numpy()
        rows = []
        for t, year in enumerate(spec.years):
            out = self.output(t)
            gdp = self.gdp[t]
            for sector in ("A-B", "C-E", "D"):
                traded = out[:, sectors == sector].sum(axis=1)
                va = 0.35 * traded + 0.04 * gdp * rng.lognormal(0, 0.2, len(iso))
                rows.append(pd.DataFrame({"year": year, "country": iso, "sector": sector, "indicator": "value_added", "value": va}))
            rows.append(pd.DataFrame({"year": year, "country": iso, "sector": "TOTAL", "indicator": "gdp", "value": gdp}))
            capital = 2.8 * gdp * rng.lognormal(0, 0.1, len(iso))
            rows.append(pd.DataFrame({"year": year, "country": iso, "sector": "TOTAL", "indicator": "rnna", "value": capital / 1e6}))
            emp = gdp / 3.0e4 / 1e6 * rng.lognormal(0, 0.3, len(iso))
            rows.append(pd.DataFrame({"year": year, "country": iso, "sector": "TOTAL", "indicator": "emp", "value": emp}))
        cap = pd.concat(rows, ignore_index=True)
        # C-E in national accounts includes manufacturing: report it as such
        ce = cap["sector"] == "C-E"
        d = cap[cap["sector"] == "D"].set_index(["year", "country"])["value"]
        cap.loc[ce, "value"] = cap.loc[ce, "value"].to_numpy() + d.reindex(pd.MultiIndex.from_frame(cap.loc[ce, ["year", "country"]])).to_numpy()
        return cap

    def geography(self) -> pd.DataFrame:
        """Country pairs in the CEPII GeoDist layout (iso3_a, iso3_b, dist_km, contig, comlang_off)."""
        iso = self.countries["iso3"].to_numpy()
        a, b = np.meshgrid(np.arange(len(iso)), np.arange(len(iso)), indexing="ij")
        a, b = a.ravel(), b.ravel()
        return pd.DataFrame({"iso3_a": iso[a], "iso3_b": iso[b], "dist_km": np.round(self.distance_km[a, b], 2),
                             "contig": self.contiguous[a, b].astype(int), "comlang_off": self.common_language[a, b].astype(int)})

    # ---- writers -------------------------------------------------------------------------
    def write(self, folder: str | Path, *, baci: bool = False) -> dict[str, Path]:
        """Write trade (tidy Parquet, or BACI CSV per year), capacity and geography files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        if baci:
            paths.update({f"trade_{y}": p for y, p in write_baci(self, folder).items()})
        else:
            paths["trade"] = folder / "trade.parquet"
            self.trade.to_parquet(paths["trade"], index=False)
        paths["capacity"] = folder / "capacity.csv"
        self.capacity().to_csv(paths["capacity"], index=False)
        paths["geography"] = folder / "geography.csv"
        self.geography().to_csv(paths["geography"], index=False)
        return paths


def write_baci(world: World, folder: str | Path, *, max_rows: int | None = None) -> dict[int, Path]:
    """Write BACI-format CSVs (``t,i,j,k,v,q``; v in thousands of USD, q in tons), one per year.

    Countries use ISO 3166 numeric codes; rows are sorted by (i, j, k) as in BACI's files;
    stops after the year that reaches ``max_rows``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    numeric = {c.alpha_3: int(c.numeric) for c in pycountry.countries}
    country_code = np.array([numeric[c] for c in world.countries["iso3"]], dtype=np.int32)
    product_code = world.products["product"].astype(int).to_numpy(np.int32)
    out: dict[int, Path] = {}
    written = 0
    for year, f in world.flows_by_year():
        i, j, k = country_code[f["exporter"]], country_code[f["importer"]], product_code[f["product"]]
        order = np.lexsort((k, j, i))
        baci = pa.table({"t": np.full(len(order), year, np.int16), "i": i[order], "j": j[order], "k": k[order],
                         "v": (f["value_usd"] / 1000).round(3)[order], "q": f["quantity"].round(3)[order]})
        path = folder / f"BACI_HS17_Y{year}_synthetic.csv"
        with open(path, "wb") as out_file:  # pyarrow's writer (10x pandas'); its header would be quoted, BACI's is not
            out_file.write(b"t,i,j,k,v,q\n")
            pacsv.write_csv(baci, out_file, pacsv.WriteOptions(include_header=False))
        out[year] = path
        written += len(baci)
        if max_rows is not None and written >= max_rows:
            break
    return out


def _country_codes(n: int) -> list[str]:
    sco = list(BLOCS["SCO"])
    others = [c for c in BLOCS["ASEAN"] + BLOCS["EAEU"] + BLOCS["BRICS"] if c not in sco]
    others = list(dict.fromkeys(others))
    rest = sorted(c.alpha_3 for c in pycountry.countries if c.alpha_3 not in set(sco) | set(others))
    return (sco + others + rest)[:n]


def _ring_distance(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    d = np.abs(a - b) % k
    return np.minimum(d, k - d)


def generate_world(spec: WorldSpec | None = None) -> World:
    """Build a :class:`World` from ``spec`` (default :meth:`WorldSpec.demo`). Deterministic in the seed."""
    spec = spec or WorldSpec.demo()
    if spec.n_countries < 12 or spec.n_countries > 249:
        raise ValueError(f"n_countries must be between 12 and 249; got {spec.n_countries}")
    if spec.n_products < 10:
        raise ValueError(f"n_products must be at least 10; got {spec.n_products}")
    rng = np.random.default_rng(spec.seed)
    n_c, n_p, k = spec.n_countries, spec.n_products, spec.n_capabilities
    iso = _country_codes(n_c)

    # geography: regions on a globe; the first ten (SCO) share two neighbouring regions
    n_regions = 6
    centres = np.column_stack([rng.uniform(-40, 60, n_regions), rng.uniform(-150, 150, n_regions)])
    centres[1] = centres[0] + [5.0, 25.0]
    region = rng.integers(0, n_regions, n_c)
    region[:10] = np.where(np.arange(10) % 3 == 0, 1, 0)
    lat = np.clip(centres[region, 0] + rng.normal(0, 8, n_c), -80, 80)
    lon = centres[region, 1] + rng.normal(0, 12, n_c)
    phi, lam = np.radians(lat), np.radians(lon)
    cos_d = (np.sin(phi)[:, None] * np.sin(phi)[None, :]
             + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.cos(lam[:, None] - lam[None, :]))
    distance = 6371.0 * np.arccos(np.clip(cos_d, -1, 1))
    np.fill_diagonal(distance, 0.0)
    distance = np.maximum(distance, 50.0)
    np.fill_diagonal(distance, 10.0)
    contiguous = (distance < 1200) & ~np.eye(n_c, dtype=bool)
    same_region = region[:, None] == region[None, :]
    lang = rng.random((n_c, n_c)) < np.where(same_region, 0.3, 0.03)
    common_language = (lang | lang.T) & ~np.eye(n_c, dtype=bool)

    # products: requirements clustered on the ring; chapters follow the ring
    centre_p = np.sort(rng.uniform(0, k, n_p))
    n_req = 1 + rng.poisson(spec.capabilities_per_product - 1, n_p)
    requirements = np.zeros((n_p, k), dtype=bool)
    for p in range(n_p):  # a few thousand products at most: generator set-up only
        offsets = np.round(rng.normal(0, 2.0, n_req[p])).astype(int)
        requirements[p, (int(centre_p[p]) + offsets) % k] = True
    chapter_of = np.minimum((centre_p / k * len(_CHAPTERS)).astype(int), len(_CHAPTERS) - 1)
    codes = []
    used: dict[str, int] = {}
    for ch in chapter_of:
        chapter = _CHAPTERS[ch]
        n = used.get(chapter, 0)
        used[chapter] = n + 1
        codes.append(f"{chapter}{1 + n // 9:02d}{(n % 9 + 1) * 10:02d}" if n < 9 * 99 else f"{chapter}{n:04d}"[:6])
    demand = rng.lognormal(0, 1.0, n_p)
    demand /= demand.mean()

    # countries: size, development and initial capabilities around a centre
    size0 = rng.lognormal(np.log(2e10), 1.2, n_c)
    size0[:10] *= np.array([8, 3, 5, 1.5, 1.2, 1.0, 0.2, 0.15, 0.5, 0.5])  # CHN, RUS, IND, ... roughly
    development = rng.uniform(0.1, 0.9, n_c)
    centre_c = rng.uniform(0, k, n_c)
    caps = np.zeros((spec.n_years, n_c, k), dtype=bool)
    ring = np.arange(k)
    dist_ring = _ring_distance(centre_c[:, None], ring[None, :], k)
    p_hold = 1 / (1 + np.exp(-(-1.0 + 3.0 * development[:, None] - 0.35 * dist_ring)))
    caps[0] = rng.random((n_c, k)) < p_hold
    window = 2
    neighbour = (_ring_distance(ring[:, None], ring[None, :], k) <= window) & ~np.eye(k, dtype=bool)
    growth = rng.normal(0.035, 0.015, n_c)
    gdp = np.zeros((spec.n_years, n_c))
    gdp[0] = size0
    for t in range(1, spec.n_years):
        held = caps[t - 1]
        near = (held.astype(float) @ neighbour.astype(float)) / neighbour.sum(axis=1)
        acquire = ~held & (rng.random((n_c, k)) < spec.acquisition_rate * near**2)
        lose = held & (rng.random((n_c, k)) < spec.loss_rate)
        caps[t] = (held | acquire) & ~lose
        gdp[t] = gdp[t - 1] * np.exp(growth + 0.5 * (caps[t].mean(axis=1) - held.mean(axis=1)) + rng.normal(0, 0.02, n_c))
    productivity = rng.lognormal(0, 0.8, (n_c, n_p))

    countries = pd.DataFrame({"iso3": iso, "size": size0, "lat": lat, "lon": lon, "region": region, "centre": centre_c,
                              "development": development})
    products = pd.DataFrame({"product": codes, "chapter": [_CHAPTERS[c] for c in chapter_of], "centre": centre_p,
                             "demand": demand, "n_capabilities": requirements.sum(axis=1)})
    return World(spec, countries, products, requirements, caps, productivity, distance, contiguous, common_language, gdp)
