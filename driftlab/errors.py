"""The error type the CLI turns into one line instead of a traceback."""


class DriftlabError(Exception):
    """A user-facing problem; the message names the problem and the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input, not a bug: shown as one line."""
    from driftlab.algorithms import ConfigError, UnknownDriftError
    from driftlab.algorithms.drift_io import DriftFileError
    from driftlab.algorithms.storage import RecordFileError
    from driftlab.envs import EnvironmentUnavailableError, UnknownEnvironmentError

    return (DriftlabError, ConfigError, UnknownDriftError, UnknownEnvironmentError,
            DriftFileError, RecordFileError, EnvironmentUnavailableError)
