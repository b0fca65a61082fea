"""Ad-hoc experiments behind the *dev* figures of docs/method.md.

Each reads the outputs a method case left in ``benchmarks/cache/method_CASE/`` (run
``python -m benchmarks.method CASE`` first), prints its figures and stores no record (at most a cache file in that folder): they
are kept so that a measured negative result can be re-run, not as benchmarks (no stored
records, no tables). Run as ``python -m benchmarks.dev.NAME CASE ...``.
"""
