"""The one place progress bars are made, so they all follow the same rule.

A bar draws only when stderr is a terminal: in a Slurm log or a CI capture every redraw would be one more
line of ``\\r``-joined noise, and the tools log their own summaries there anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` that draws only on a terminal; ``enabled=False`` silences it everywhere."""
    # tqdm documents disable=None as "disable on a non-TTY" (it asks the output file, stderr by default)
    return tqdm(iterable, disable=None if enabled else True, **kwargs)
