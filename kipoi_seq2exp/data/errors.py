"""One exception type for bad input files, so callers (CLI, Kipoi) can show the message as is."""


class DataInputError(ValueError):
    """A user-supplied data file is missing, malformed or inconsistent.

    The message always names the file, the offending record or field, and the fix.
    """
