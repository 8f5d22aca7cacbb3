"""The one exception type pruneprobe raises for bad input; messages name the problem."""


class PruneprobeError(ValueError):
    """Bad input or an unusable model/data: the message says what is wrong and what to do."""
