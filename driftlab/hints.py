"""The " (did you mean X?)" hint that every unknown-name error carries."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggestion(close: Iterable[str], *, quote: bool = False, prefix: str = "") -> str:
    """' (did you mean a or b?)' for the names in `close` (each after `prefix`,
    repr-quoted with `quote`); '' when there are none."""
    shown = [f"{prefix}{name}" for name in close]
    if quote:
        shown = [repr(name) for name in shown]
    return f" (did you mean {' or '.join(shown)}?)" if shown else ""


def did_you_mean(word: object, choices: Iterable[str], *, n: int = 1, quote: bool = False,
                 prefix: str = "", cutoff: float = 0.6) -> str:
    """The hint for the (up to `n`) `choices` closest to `word`, '' when none is close
    (difflib's ratio >= `cutoff`)."""
    close = difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)
    return suggestion(close, quote=quote, prefix=prefix)
