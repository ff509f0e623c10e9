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
