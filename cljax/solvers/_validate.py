"""Option checks shared by the solvers (one clear error naming the argument)."""

from __future__ import annotations

import numpy as np

from cljax._src import checks as checks


def check_num_steps(num_steps) -> int:
    """``num_steps`` must be a Python or NumPy integer >= 0 (not a bool, not a float)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
        raise TypeError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps}")
    return int(num_steps)


def check_tol(tol) -> None:
    """``tol`` is ``None`` or a finite number > 0."""
    if tol is None:
        return
    if isinstance(tol, (str, bytes, bool)):
        raise TypeError(f"tol must be a number > 0 or None, got {tol!r}")
    checks.check_positive(tol, "tol")
