"""The local package index: pypiserver with cached digests and cached auth,
served by waitress on 127.0.0.1, plus start/stop/status and its credentials."""
