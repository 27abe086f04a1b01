"""The one exception type for user mistakes; the CLI prints it as a single line and exits 2."""


class Inception3Error(Exception):
    """A problem the user can fix: bad input, a missing file, a config that cannot work.

    The message names the file or value at fault and says what to do about it.
    """
