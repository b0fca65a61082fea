"""Benchmarks of napari-cryorient: each writes JSON and regenerates its table in docs/."""
