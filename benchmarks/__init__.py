"""headscope's benchmarks, side by side with CircuitsVis: ``python -m benchmarks``.

Measurements, never tests: see docs/benchmarks.md for what each number means.
"""
