"""The one exception every data check raises: its message names the file, what was expected,
what was found, and how to fix it."""


class DataError(ValueError):
    pass
