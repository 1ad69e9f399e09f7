"""``make bench``: our index against stock pypiserver, the release, and the consumer's load().

Run ``python -m benchmarks.run --help``; results go to benchmarks/RESULTS.md.
"""
