"""Octoroute's benchmark harness: paired, pinned, open-loop measurements of what the router adds.

Run on demand with ``python -m bench`` (see ``bench/README.md`` for the method); never part of the
test suite. Every router number is measured in the same run as the same load sent straight to the
fake upstream and through ``bench/floor.py``, a feature-less aiohttp pass-through, so results are
read as ratios against that floor rather than as absolute numbers of a noisy shared VM.
"""
