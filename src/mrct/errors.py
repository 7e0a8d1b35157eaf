"""The exceptions mrct raises for bad input: one hierarchy under :class:`MrctError`.

Every error mrct raises on purpose for input it cannot use (a damaged file, a wrong shape, a
wrong dtype) is an :class:`MrctError`, which is also a :class:`ValueError`, so code written
against the older ``ValueError`` messages keeps working and ``except mrct.MrctError`` catches
everything mrct reports about its input::

    MrctError (ValueError)
    +-- ReadError                a file (or folder) mrct cannot read; names it and says why
    |   +-- MissingFileError     ... which does not exist (also a FileNotFoundError)
    |   +-- UnsafeFileError      ... which would need pickle (Python objects) to load
    +-- ShapeError               an array of the wrong shape
    +-- DTypeError               an array of the wrong dtype (also a TypeError)
    +-- OutputExistsError        an output file that exists and may not be replaced
                                 (also a FileExistsError; commands: pass --force)

``mrct.data.SharedDataMissing`` (the shared data folder is absent) is a
:class:`MissingFileError`. ``mrct.training.CheckpointError`` is an :class:`MrctError` of
its own.

Readers raise :class:`ReadError` with the path in the message (``err.path`` holds it too) and
chain the library's own exception as ``__cause__``. The constructors take the message as their
only positional argument, so the exceptions survive pickling (torch ``DataLoader`` workers
re-raise them in the parent by type and message).
"""

from __future__ import annotations

import os

__all__ = [
    "DTypeError",
    "MissingFileError",
    "MrctError",
    "OutputExistsError",
    "ReadError",
    "ShapeError",
    "UnsafeFileError",
]


class MrctError(ValueError):
    """Base class of the errors mrct raises for input it cannot use (also a ValueError)."""


class ReadError(MrctError):
    """A file or folder that cannot be read; the message names it and says what was wrong.

    Parameters
    ----------
    message : str
        The whole message; it contains the path.
    path : str or PathLike, optional
        The file (or folder) concerned, kept as :attr:`path` (a ``str``).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)

    def __reduce__(self):
        return (_rebuild, (type(self), str(self), self.path))


class MissingFileError(ReadError, FileNotFoundError):
    """The file or folder does not exist (also a :class:`FileNotFoundError`)."""

    def __str__(self) -> str:  # OSError's own would format errno / filename
        return str(self.args[0]) if self.args else ""


class UnsafeFileError(ReadError):
    """A file that could only be loaded by unpickling Python objects, which mrct never does."""


class ShapeError(MrctError):
    """An array (or a file's array) of the wrong shape."""


class DTypeError(MrctError, TypeError):
    """An array (or a file's array) of the wrong dtype (also a :class:`TypeError`)."""


class OutputExistsError(MrctError, FileExistsError):
    """An output file exists and the caller did not allow replacing it (``overwrite=False``;
    the commands' ``--force``). Also a :class:`FileExistsError`. :attr:`path` holds it."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)

    def __str__(self) -> str:  # OSError's own would format errno / filename
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return (_rebuild, (type(self), str(self), self.path))


def _rebuild(cls, message, path):
    return cls(message, path=path)
