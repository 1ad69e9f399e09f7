# The last version released from this repository; `make release` rewrites it.
__version__ = "1.1.0"
