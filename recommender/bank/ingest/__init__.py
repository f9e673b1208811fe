"""Ingest trade, capacity and geography files into the data bank, validating everything first.

Every reader turns a source file into batches of the bank's canonical schema
(:data:`recommender.bank.TRADE_SCHEMA` and friends). One validator checks the batches and one
writer publishes them through a bank transaction, so a file that fails any check leaves the bank
untouched.

Rules (documented in the README):

* codes are strings; product codes keep leading zeros and must all have one length;
* country codes must be known ISO 3166 alpha-3 codes (current or withdrawn) after the aliases of
  :mod:`recommender.countries`; BACI numeric codes map through BACI's country file or ISO numeric;
* trade values must be present and non-negative; a flow from a country to itself is dropped and
  counted (re-imports, seen in UN data); partner aggregates (World, areas n.e.s.) are dropped and
  counted;
* a key (year, exporter, importer, product) may appear once; duplicates reject the file;
* capacity values may be negative (value added and inventories can be), must be present in long
  tables; empty cells of wide tables mean "not reported" and are skipped and counted;
* re-ingesting a file with the same sha256 changes nothing; a new source whose years overlap a
  source already in the bank (for capacity: same years and indicators) is refused unless
  ``replace=True``, which removes the overlapping years of the older source.
"""

from recommender.bank.ingest.capacity import ingest_capacity, normalise_indicator
from recommender.bank.ingest.common import (
    CAPACITY_FORMATS,
    TRADE_FORMATS,
    IngestResult,
    parse_column_map,
)
from recommender.bank.ingest.geography import ingest_geography
from recommender.bank.ingest.names import ingest_product_names
from recommender.bank.ingest.trade import ingest_trade, ingest_trade_files, trade_files
from recommender.bank.ingest.validate import TradeValidator

__all__ = ["ingest_product_names", "CAPACITY_FORMATS", "TRADE_FORMATS", "IngestResult", "TradeValidator",
           "ingest_capacity", "ingest_geography", "ingest_trade", "ingest_trade_files", "trade_files", "normalise_indicator", "parse_column_map"]
