"""One error hierarchy. ``python -m pipeline`` prints these as one line and
exits non-zero; any other exception is a bug and keeps its traceback."""

from index.errors import IndexServerError


class PipelineError(Exception):
    """Base of every expected failure. The message says what, where and the fix."""

    exit_code = 1


class ConfigError(PipelineError):
    """A setting (Make variable, environment, dataset.toml) is invalid."""


class DataError(PipelineError):
    """The training data is missing or unusable."""


class TrainingError(PipelineError):
    """Training produced nothing usable."""


class OnnxError(PipelineError):
    """A model has no ONNX copy and dataset.toml requires one ([release] onnx = "required")."""


class VersionError(PipelineError):
    """A bump, tag or version is invalid or would be ambiguous."""


class BuildError(PipelineError):
    """The sdist or wheel could not be built or has the wrong contents."""


class RequirementError(PipelineError):
    """A model needs a module that no installed distribution provides, or cannot be scanned for its modules."""


class PackageIndexError(PipelineError, IndexServerError):
    """The package index is unreachable, refused us, or serves the wrong bytes."""


class CredentialsRefused(PackageIndexError):
    """The index answered 401 or 403 to the credentials sent (or to none)."""


class UnreadableRelease(PackageIndexError):
    """A published version's wheel holds no models this pipeline can compare with.

    ``problem`` is what is wrong, without the fix: each caller knows its own way out."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem


class YankedModelsError(PipelineError):
    """The trained models are byte-identical to those of a yanked version."""


class GateError(PipelineError):
    """The new models are worse than the published ones."""


class LockBusyError(PipelineError):
    """Another release holds the release lock."""


class RecordError(PipelineError):
    """The clone could not record a published version (dist/, releases/, version.py)."""


class AuditChainBroken(PipelineError):
    """The index's audit log no longer holds together: an entry was edited or removed."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM. Not a PipelineError: it stops whatever runs, then the
    command says what the interruption left behind (the message) and exits 128+signal.

    ``accounted``: the message already says what was published and recorded; otherwise
    the command adds that nothing was."""

    def __init__(self, message: str = "", exit_code: int = 130, accounted: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.accounted = accounted
