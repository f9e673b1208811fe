"""Economic complexity and relatedness from exporter × product export values.

Definitions follow Hidalgo & Hausmann (2009), Hidalgo et al. (2007) and Hausmann et al. (2014,
*The Atlas of Economic Complexity*), with the normalisations of the Growth Lab's ``ecomplexity``
package (which the tests compare against to rtol 1e-6):

* RCA (Balassa 1965): :math:`RCA_{cp} = (X_{cp} / \\sum_p X_{cp}) / (\\sum_c X_{cp} / \\sum_{cp} X_{cp})`;
  presence :math:`M_{cp} = [RCA_{cp} \\ge 1]`.
* diversity :math:`k_{c,0} = \\sum_p M_{cp}`; ubiquity :math:`k_{p,0} = \\sum_c M_{cp}`.
* ECI / PCI: :math:`\\tilde M_{pp'} = \\sum_c M_{cp} M_{cp'} / (k_{c,0} k_{p,0})`; PCI is the
  eigenvector of the second largest eigenvalue, ECI :math:`= \\sum_p M_{cp} PCI_p / k_{c,0}`,
  signed to correlate positively with diversity; ECI is standardised, PCI uses ECI's mean and
  standard deviation (as ``ecomplexity`` does).
* proximity (minimum conditional probability):
  :math:`\\phi_{pp'} = \\sum_c M_{cp} M_{cp'} / \\max(k_{p,0}, k_{p',0})`.
* density :math:`\\omega_{cp} = \\sum_{p'} M_{cp'} \\phi_{pp'} / \\sum_{p'} \\phi_{pp'}`; distance
  :math:`= 1 - \\omega_{cp}`.
* COI :math:`= \\sum_p \\omega_{cp} (1 - M_{cp}) PCI_p` (standardised); COG
  :math:`= (1 - M_{cp}) \\sum_{p'} (1 - M_{cp'}) \\phi_{p'p} PCI_{p'} / \\sum_{p''} \\phi_{p'p''}`
  divided by the standard deviation of raw ECI.

Each year's grid holds every exporter and product with positive total exports that year (the full
rectangle, so density exists for products a country does not yet export). Years are computed
independently: values for year t use year t only.

The eigenproblem is solved on the symmetric matrix
:math:`D_p^{-1/2} M^T D_c^{-1} M D_p^{-1/2}` (same eigenvalues, eigenvectors rescaled by
:math:`D_p^{-1/2}`), which is faster and numerically steadier than the non-symmetric form, and on
its smaller twin :math:`D_c^{-1/2} M D_p^{-1} M^T D_c^{-1/2}` when there are fewer countries than
products.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from threadpoolctl import threadpool_limits

from features.columns import check_columns
from features.keys import KeyIndex, take
from features.resources import parallel_workers

COMPLEXITY_COLUMNS = ["export_value", "world_share", "rca", "mcp", "diversity", "ubiquity", "eci", "pci",
                      "density", "distance", "coi", "cog"]


def _second_eigenvector(sym: np.ndarray) -> np.ndarray:
    """Eigenvector of the second largest eigenvalue of a symmetric matrix."""
    n = sym.shape[0]
    if n <= 600:
        _, vecs = scipy.linalg.eigh(sym, subset_by_index=[n - 2, n - 1])
        return vecs[:, 0]
    vals, vecs = scipy.sparse.linalg.eigsh(sym, k=2, which="LA", tol=0, v0=np.ones(n) / np.sqrt(n))
    return vecs[:, np.argsort(vals)[0]]


def _product_eigenvector(m: np.ndarray, d_c: np.ndarray, d_p: np.ndarray) -> np.ndarray:
    """Second eigenvector of :math:`B^T B`, :math:`B = D_c^{-1/2} M D_p^{-1/2}`, on the smaller side.

    :math:`B^T B` (products) and :math:`B B^T` (countries) share their non-zero eigenvalues; for an
    eigenvector u of :math:`B B^T`, :math:`B^T u` is the one of :math:`B^T B` (up to scale and sign,
    which the standardisations remove). A world of 230 countries × 1,240 products solves a 230 × 230
    problem instead of forming a 1,240 × 1,240 one.
    """
    b = (np.sqrt(d_c)[:, None] * m) * d_p[None, :]
    if b.shape[0] >= b.shape[1]:
        return _second_eigenvector(b.T @ b)
    v = b.T @ _second_eigenvector(b @ b.T)
    return v / np.linalg.norm(v)


def complexity_matrices(x: np.ndarray) -> dict[str, np.ndarray]:
    """All measures for one year from a dense countries × products export matrix.

    ``x`` must have no all-zero row or column. Returns arrays keyed like
    :data:`COMPLEXITY_COLUMNS` plus ``proximity`` (products × products).
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate years give NaN, as in ecomplexity
        return _matrices(np.asarray(x, dtype=float))


def _matrices(x: np.ndarray) -> dict[str, np.ndarray]:
    row, col = x.sum(axis=1), x.sum(axis=0)
    total = row.sum()
    rca = (x / row[:, None]) / (col / total)[None, :]
    m = (rca >= 1).astype(float)
    diversity, ubiquity = m.sum(axis=1), m.sum(axis=0)

    # products × products from dense BLAS (M has ~10 % ones: dgemm beats sparse × sparse here);
    # products of M with dense matrices stay sparse, where the zeros are skipped
    ms = scipy.sparse.csr_array(m)
    d_c, d_p = 1.0 / diversity, 1.0 / np.sqrt(ubiquity)
    kp = d_p * _product_eigenvector(m, d_c, d_p)
    kc = d_c * (ms @ kp)
    sign = np.sign(np.corrcoef(diversity, kc)[0, 1]) if diversity.std() > 0 else 1.0
    if not np.isfinite(sign) or sign == 0:  # ECI uncorrelated with diversity (rounding decided it before): as is
        sign = 1.0
    eci_raw, pci_raw = sign * kc, sign * kp

    # φ = min(C/k_p', C/k_p) = C / max(k_p, k_p'), C = MᵀM symmetric and integral (exact in float)
    phi = m.T @ m
    phi /= np.maximum(ubiquity[:, None], ubiquity[None, :])
    phi_rowsum = phi.sum(axis=1)
    # density = M φ / Σφ and COG's M W (W = diag(PCI / Σφ) φ) in one sparse × dense product
    w = pci_raw / phi_rowsum
    both = scipy.sparse.vstack([ms, ms * w[None, :]], format="csr") @ phi
    n = m.shape[0]
    density = both[:n] / phi_rowsum[None, :]
    absent = 1.0 - m
    coi = ((density * absent) * pci_raw[None, :]).sum(axis=1)
    cog = absent * ((w @ phi)[None, :] - both[n:])  # (1 − M) W = 1ᵀW − M W

    mean, std = eci_raw.mean(), eci_raw.std()
    return {
        "export_value": x,
        "world_share": x / col[None, :],
        "rca": rca,
        "mcp": m,
        "diversity": np.broadcast_to(diversity[:, None], x.shape),
        "ubiquity": np.broadcast_to(ubiquity[None, :], x.shape),
        "eci": np.broadcast_to(((eci_raw - mean) / std)[:, None], x.shape),
        "pci": np.broadcast_to(((pci_raw - mean) / std)[None, :], x.shape),
        "density": density,
        "distance": 1.0 - density,
        "coi": np.broadcast_to(((coi - coi.mean()) / coi.std())[:, None], x.shape),
        "cog": cog / std,
        "proximity": phi,
    }


def _year_matrix(exporter: np.ndarray, product: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense matrix of one year from integer codes; rows/columns are the codes with positive totals."""
    keep = value > 0
    exporter, product, value = exporter[keep], product[keep], value[keep]
    rows = np.flatnonzero(np.bincount(exporter))  # O(n) instead of sorting
    cols = np.flatnonzero(np.bincount(product))
    r_map = np.zeros(rows[-1] + 1 if rows.size else 1, dtype=np.int64)
    r_map[rows] = np.arange(rows.size)
    c_map = np.zeros(cols[-1] + 1 if cols.size else 1, dtype=np.int64)
    c_map[cols] = np.arange(cols.size)
    x = np.zeros((len(rows), len(cols)))
    np.add.at(x, (r_map[exporter], c_map[product]), value)
    return x, rows, cols


def _sorted_factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values, sort=True)``, sorting the few uniques instead of hashing twice."""
    codes, uniques = pd.factorize(values, sort=False)
    order = np.argsort(uniques.to_numpy(), kind="stable")
    rank = np.empty(len(order), dtype=codes.dtype)
    rank[order] = np.arange(len(order), dtype=codes.dtype)
    return np.where(codes < 0, codes, rank[codes]), uniques.take(order)  # NaN keeps −1


def _year_groups(years: np.ndarray) -> list:
    """Row selections of each year: slices when the table is sorted by year (a bank's is), else indices."""
    if years.size == 0:
        return []
    if bool((years[1:] >= years[:-1]).all()):
        bounds = [0, *(np.flatnonzero(years[1:] != years[:-1]) + 1).tolist(), years.size]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    order = np.argsort(years, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(years[order])) + 1)


def compute_complexity(exports: pd.DataFrame) -> pd.DataFrame:
    """RCA, presence, diversity, ubiquity, ECI, PCI, density, distance, COI and COG by year.

    Parameters
    ----------
    exports : DataFrame with columns ``year, exporter, product, value`` (world exports of each
        exporter in each product; duplicate keys are summed).

    Returns
    -------
    DataFrame with one row per (year, exporter, product) of each year's full grid and columns
    ``year, exporter, product`` + :data:`COMPLEXITY_COLUMNS`, sorted by year, exporter, product.

    Examples
    --------
    >>> df = pd.DataFrame({"year": 2000, "exporter": ["A", "A", "B", "C"],
    ...                    "product": ["x", "y", "y", "z"], "value": [1.0, 1.0, 2.0, 1.0]})
    >>> compute_complexity(df).query("exporter == 'A' and product == 'x'")["rca"].round(3).tolist()
    [2.5]
    """
    check_columns(exports, ["year", "exporter", "product", "value"], "exports")
    exporter_codes, exporters = _sorted_factorize(exports["exporter"])
    product_codes, products = _sorted_factorize(exports["product"])
    years = exports["year"].to_numpy()
    values = exports["value"].to_numpy(dtype=float)
    grids = []
    for idx in _year_groups(years):
        if len(years[idx]) == 0:
            continue
        x, rows, cols = _year_matrix(exporter_codes[idx], product_codes[idx], values[idx])
        if len(rows) >= 2 and len(cols) >= 2:
            grids.append((years[idx][0], x, rows, cols))
    if not grids:
        return pd.DataFrame(columns=["year", "exporter", "product", *COMPLEXITY_COLUMNS])
    # fill preallocated columns in place (each measure in its final dtype) so the frame is built
    # without copies
    total = sum(x.size for _, x, _, _ in grids)
    dtypes = {"mcp": np.int8, "diversity": np.int64, "ubiquity": np.int64}
    columns = {name: np.empty(total, dtype=dtypes.get(name, np.float64)) for name in COMPLEXITY_COLUMNS}
    year_col = np.empty(total, dtype=np.int64)
    exp_col = np.empty(total, dtype=np.intp)
    prod_col = np.empty(total, dtype=np.intp)
    offsets = np.cumsum([0] + [x.size for _, x, _, _ in grids])

    def fill(i: int) -> None:  # numpy and BLAS release the GIL: years run on both cores
        year, x, rows, cols = grids[i]
        start, stop = offsets[i], offsets[i + 1]
        measures = complexity_matrices(x)
        for name, column in columns.items():
            column[start:stop].reshape(x.shape)[...] = measures[name]  # broadcasts are not materialised
        year_col[start:stop] = year
        exp_col[start:stop] = np.repeat(rows, len(cols))
        prod_col[start:stop] = np.tile(cols, len(rows))

    # one BLAS thread per worker and one worker per usable core (fewer if memory is short: each holds
    # its year's grid and ~8 dense country × product matrices): years in parallel beat threads in a year
    largest = max((x.size for _, x, _, _ in grids), default=0)
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=parallel_workers(largest * 8 * 8)) as pool:
        list(pool.map(fill, range(len(grids))))
    out = pd.DataFrame({"year": year_col, "exporter": exporters.take(exp_col), "product": products.take(prod_col),
                        **columns}, copy=False)
    return out


def proximity(exports: pd.DataFrame, year: int) -> pd.DataFrame:
    """The product space of one year as an edge list ``product_1, product_2, proximity``."""
    year_exports = exports[exports["year"] == year]
    exporter_codes, _ = pd.factorize(year_exports["exporter"], sort=True)
    product_codes, labels = pd.factorize(year_exports["product"], sort=True)
    x, _, cols = _year_matrix(exporter_codes, product_codes, year_exports["value"].to_numpy(dtype=float))
    products = labels.take(cols)
    phi = complexity_matrices(x)["proximity"]
    i, j = np.triu_indices(len(products), k=1)
    return pd.DataFrame({"product_1": products[i], "product_2": products[j], "proximity": phi[i, j]})


def add_dynamics(complexity: pd.DataFrame) -> pd.DataFrame:
    """Add 3- and 5-year log growth of exports and the 3-year change in RCA.

    ``export_growth_3y = ln(1 + X_t) − ln(1 + X_{t−3})`` (USD), likewise ``_5y``;
    ``rca_change_3y = RCA_t − RCA_{t−3}``. Missing when year t−k is not in the table or the pair
    was not in that year's grid. Uses years ≤ t only.
    """
    check_columns(complexity, ["year", "exporter", "product", "export_value", "rca"], "complexity")
    index = KeyIndex(complexity, ["year", "exporter", "product"])
    exports, rca = complexity["export_value"].to_numpy(), complexity["rca"].to_numpy()
    added = {}
    for k in (3, 5):
        rows = index.rows(complexity, shift={"year": -k})  # each row's pair in year t − k
        added[f"export_growth_{k}y"] = np.log1p(exports) - np.log1p(take(exports, rows))
        if k == 3:
            added["rca_change_3y"] = rca - take(rca, rows)
    return complexity.assign(**added)  # the existing columns are shared, not copied (copy-on-write)
