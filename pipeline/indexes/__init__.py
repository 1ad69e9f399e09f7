"""Index backends other than the embedded pypiserver (``pipeline.index_api.IndexClient``)."""
