"""Errors a consumer can catch; every message says what to do."""


class MymodelError(Exception):
    """Base of every error this package raises on purpose."""


class UnknownModelError(MymodelError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class IntegrityError(MymodelError):
    """A packaged file or its manifest is changed, damaged or missing: nothing is unpickled."""


class EnvironmentMismatchError(MymodelError):
    """The installed libraries are outside the range the models were trained with."""


class SchemaError(MymodelError, ValueError):
    """Input rows do not match the model's input schema."""


class MalformedBuild(MymodelError, ValueError):
    """A published build's JSON file is not what a build writes: the version cannot be read.

    The message names the file and the field, e.g. ``SVC/metadata.json: metrics is null, not an object``."""
