"""Small helpers every experiment shares: argument types, CSV files, figures, summaries."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text):
    """argparse type: a finite number ≥ 0."""
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def radius(text):
    """argparse type: a radius ε ≥ 0; ``inf`` is allowed (every task alone)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0 (inf allowed), got {text}")
    return value


def write_csv(path, header, rows) -> None:
    """One CSV file: a header row, then ``rows``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_se(x, axis=0):
    """Mean and standard error s/√n (s with ddof = 1) along ``axis``; NaN s.e. when n = 1."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = np.mean(x, axis=axis)
    if n < 2:
        return mean, np.full(np.shape(mean), np.nan)
    return mean, np.std(x, axis=axis, ddof=1) / np.sqrt(n)


def mean_sd(values):
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of a list."""
    v = np.asarray(values, np.float64)
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


class UsageError(ValueError):
    """Bad input to a subcommand, found before any work.

    ``cljax`` prints it as one line on stderr (``cljax <command>: error: <message>``), with no
    traceback, and exits with status 2.  The message names the option or file.
    """


def prepare_out_dir(path, option: str = "--out", files=()):
    """Check that ``path`` can hold the outputs before any work starts, and create it.

    Refuses (:class:`UsageError`, naming ``option``) a path that is an existing file, that
    cannot be created or written, or where one of ``files`` (names inside it) is a directory.
    Returns the folder as a :class:`pathlib.Path`.
    """
    import os
    from pathlib import Path

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot create the folder ({err.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable")
    for name in files:
        if (out / name).is_dir():
            raise UsageError(f"{option} {path}: {name} exists there and is a directory")
    return out
