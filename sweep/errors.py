"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


def first_line(e: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), for one-line errors."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class UserError(Exception):
    """A problem in the user's input, with a message that names the problem and the fix."""


class ConfigError(UserError):
    """A config key, type or value that cannot work."""


class DataError(UserError):
    """Data that is missing, unreadable or too small for the requested split."""


class CheckpointError(UserError):
    """A checkpoint that cannot be trusted: corrupt, foreign, or needing arbitrary unpickling."""


class RunDirError(UserError):
    """A run directory whose state conflicts with what was asked (for example, overwriting)."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: a run outcome (status "failed"), not a user error."""
