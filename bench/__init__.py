"""FreshClaim benchmarks: ``make bench`` (``python -m bench.run_all``) runs them all."""
