"""features.keys: the lookup the feature tables use is pandas' left merge on unique keys, value for value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import FeatureError
from features.keys import lookup


def test_lookup_is_a_left_merge_on_unique_keys():
    rng = np.random.default_rng(0)
    grid = pd.MultiIndex.from_product([range(2000, 2006), [f"C{i}" for i in range(30)], [f"{p:06d}" for p in range(40)]],
                                      names=["year", "exporter", "product"]).to_frame(index=False)
    right = grid.sample(frac=0.7, random_state=1).reset_index(drop=True)  # holes: missing keys
    right["rca"] = rng.random(len(right))
    right["ubiquity"] = rng.integers(0, 9, len(right))
    right["name"] = right["exporter"] + "/" + right["product"]
    left = grid.sample(n=5_000, replace=True, random_state=2).rename(columns={"exporter": "country"}).reset_index(drop=True)
    left.loc[:20, "country"] = "unknown"  # a key right has never seen
    left.loc[21:40, "year"] = 1990
    got = lookup(left, right, ["year", "country", "product"], ["rca", "ubiquity", "name"], ["year", "exporter", "product"])
    want = left.merge(right.rename(columns={"exporter": "country"}), on=["year", "country", "product"], how="left")
    assert want["rca"].isna().sum() > 100  # the comparison covers missing keys
    for column in ("rca", "ubiquity", "name"):
        pd.testing.assert_series_equal(pd.Series(got[column], name=column), want[column], check_dtype=column != "name")
    complete = lookup(right.iloc[::-1], right, ["year", "exporter", "product"], ["ubiquity"])["ubiquity"]
    assert complete.dtype == np.int64  # every key found: integers stay integers, as in a merge
    nothing = lookup(left, right.iloc[:0], ["year", "country", "product"], ["rca"], ["year", "exporter", "product"])["rca"]
    assert len(nothing) == len(left) and np.isnan(nothing).all()  # an empty grid (a year not in the bank)
    with pytest.raises(FeatureError, match="duplicate keys"):
        lookup(left, pd.concat([right, right.iloc[:1]]), ["year", "country", "product"], ["rca"], ["year", "exporter", "product"])
