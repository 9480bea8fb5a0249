"""bench: leakage-free benchmarks of speech models on a featstore store.

``python -m bench run benchmarks.yaml`` expands the config into a grid of cells
(task x feature view x model x seed), checks every split for leakage before any model runs,
runs each cell in isolation and writes results.jsonl, splits.json, leaderboard.md, env.json
and plots into one run folder. See ``python -m bench --help``.
"""
