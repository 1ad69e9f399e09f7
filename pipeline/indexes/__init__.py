"""The index clients: base (what every index answers alike), pypiserver (the embedded index),
devpi (devpi-server), and connect (the client for the configured index)."""
