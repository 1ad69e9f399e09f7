"""The release pipeline: data -> train -> version -> build -> publish -> verify.

Each step is a module with plain functions; ``python -m pipeline`` is the thin
command line over them that the Makefile calls.
"""
