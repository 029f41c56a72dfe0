"""The pipeline's exception tree.

PipelineError            base of everything we raise on purpose
├── InputError           bad media or settings: never retried, reason stored on the run
├── TransientError       network, throttling, a busy resource: safe to retry
└── ModelError           weights, shapes, devices

Third-party exceptions are wrapped at the boundary with ``raise InputError(...) from e`` so a user
sees one clear line and ``--debug`` shows the chain.
"""


class PipelineError(Exception):
    """Base class of all errors the pipeline raises deliberately."""


class InputError(PipelineError):
    """The input (a media file, a URI, a setting) is unusable; retrying will not help."""


class TransientError(PipelineError):
    """A temporary failure (network, throttling); the operation may be retried."""


class ModelError(PipelineError):
    """The model cannot be built, loaded or run (weights, shapes, device)."""
