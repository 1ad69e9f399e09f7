"""Plugins of every pytest run in this repository (make unit, make integration)."""

pytest_plugins = ("tests.reaper", "tests.run_groups")
