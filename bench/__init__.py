"""Benchmarks: how close creditledger runs to what PostgreSQL itself can do.

`python -m bench` (or `make bench`) creates its own databases, seeds them,
starts gunicorn, and measures in one run:

* charges, hold + capture, and refunds at 1, 4 and 16 concurrent clients,
  on one hot wallet and spread over 1,000 wallets, three ways: a raw psycopg
  transaction doing the same SQL (the baseline), the service layer, and the
  HTTP endpoint served by gunicorn; each as a ratio to the baseline;
* the time each way holds the wallet lock (lock taken to commit returned);
* balance-read latency and reconciliation rate at 10 thousand and 1 million
  ledger rows, with the reconcile process's peak memory, against a bare
  `SELECT wallet_id, sum(amount) ... GROUP BY wallet_id`.

It prints a table and writes `docs/bench/results.json` and PNG charts.
`python -m bench --soak` (or `make soak`) runs the 5-minute, 32-client mixed
workload instead and reports deadlocks and lost requests.

Client processes, not threads: the GIL would otherwise serialise the Python
work of the service-layer clients and flatter the raw baseline.
"""
