"""The pipeline's exception tree: ``PipelineError`` → ``InputError`` (never retried), ``TransientError``
(safe to retry), ``ModelError``; third-party errors are wrapped with ``raise InputError(...) from e``."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of all errors the pipeline raises deliberately."""


class InputError(PipelineError):
    """The input (a media file, a URI, a setting) is unusable; retrying will not help."""

    def naming(self, path: object, shown: str) -> InputError:
        """This error naming the input as ``shown`` where it names ``path``, the local copy it was read from."""
        return InputError(str(self).replace(str(path), shown))


class TransientError(PipelineError):
    """A temporary failure (network, throttling); the operation may be retried."""


class ModelError(PipelineError):
    """The model cannot be built, loaded or run (weights, shapes, device)."""
