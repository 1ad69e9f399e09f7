"""The model package itself: its configured name (package_name), its own modules the pipeline
uses as a library (own_package), and make rename (rename)."""
