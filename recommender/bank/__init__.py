"""The data bank: validated Parquet snapshots under the home (or at a URL), and everything that writes them.

* :mod:`~recommender.bank.databank` — :class:`DataBank`: snapshots, reads, DuckDB queries, the writer lock
* :mod:`~recommender.bank.transaction` — a snapshot under construction, made durable before it is published
* :mod:`~recommender.bank.schema` — the tables' schemas and year-file options
* :mod:`~recommender.bank.summary` — ``summary(bank)``: the JSON of ``recommender bank info``
* :mod:`~recommender.bank.remote` · :mod:`~recommender.bank.cache` · :mod:`~recommender.bank.push` — banks on S3
* :mod:`~recommender.bank.ingest` — readers of BACI, Comtrade, tidy, capacity and geography files, one validator, one publish step
* :mod:`~recommender.bank.synthetic` — the seeded synthetic world (the project's embedded default data)
"""

from recommender.bank.databank import DataBank
from recommender.bank.remote import RemoteBankError, filesystem, is_remote, remote_errors
from recommender.bank.schema import (
           CAPACITY_SCHEMA,
           CODE,
           GEOGRAPHY_SCHEMA,
           TRADE_SCHEMA,
           year_file_options,
)
from recommender.bank.summary import summary
from recommender.bank.transaction import Transaction

__all__ = ["CAPACITY_SCHEMA", "CODE", "GEOGRAPHY_SCHEMA", "TRADE_SCHEMA", "DataBank", "RemoteBankError", "Transaction",
           "filesystem", "is_remote", "remote_errors", "summary", "year_file_options"]
