"""The error type the CLI turns into one line instead of a traceback."""


class DriftlabError(Exception):
    """A user-facing problem; the message names the problem and the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input, not a bug: shown as one line."""
    from algorithms import ConfigError, UnknownDriftError
    from algorithms.drift_io import DriftFileError
    from envs import EnvironmentUnavailableError, UnknownEnvironmentError

    return (DriftlabError, ConfigError, UnknownDriftError, UnknownEnvironmentError,
            DriftFileError, EnvironmentUnavailableError)
