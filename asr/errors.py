"""One base class for the problems a user can fix (a bad file, a missing corpus, a wrong setting).

The command line prints these as one line; anything else is a bug and keeps its traceback. Subclasses keep the
builtin type a caller would expect (ValueError for bad input, FileNotFoundError for a missing path).
"""


class AsrError(Exception):
    """A problem the user can fix; the message names the file or setting and the problem."""


class InputError(AsrError, ValueError):
    """Bad input: a file, setting or value that cannot be used as it is."""


class MissingError(AsrError, FileNotFoundError):
    """A file, directory or installed package that is not there."""
