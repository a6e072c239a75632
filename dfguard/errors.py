"""The project's error for failures a user can act on.

``dfguard`` prints a ``DfguardError`` (like a ``ValueError`` about an argument, or an ``OSError`` about a file) as
one line; anything else is a bug and keeps its traceback. A ``RuntimeError`` subclass, so callers that catch
``RuntimeError`` still do.
"""


class DfguardError(RuntimeError):
    """A server that would not start, a missing GPU library, an export that does not match PyTorch, a request
    the server refused: the message says what happened and what to do."""
