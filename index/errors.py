"""The index server's errors. The pipeline's PackageIndexError subclasses IndexServerError,
so the pipeline catches both as one; the index never imports the pipeline."""


class IndexServerError(Exception):
    """The index could not start, stop or be reached. The message says what, where and the fix."""

    exit_code = 1
