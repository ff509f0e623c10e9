"""Small helpers every experiment shares: argument types, CSV files, figures, summaries."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np

from cljax._src.errors import UsageError as UsageError


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def at_least_two(text):
    """argparse type: an integer ≥ 2 (seeds or draws behind a standard error)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 2 (a standard error needs two), got {text!r}")
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


SEED_LIMIT = 2**32


def seed(text):
    """argparse type: a PRNG seed, an integer 0 ≤ seed < 2**32.

    ``jax.random.PRNGKey`` keeps 32 bits without ``jax_enable_x64`` (2**32 gives the key of
    0) and overflows above 2**63, so larger seeds are refused rather than silently folded.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {text}")
    return value


def working_dtype():
    """JAX's default float dtype (float32, or float64 under ``jax_enable_x64``)."""
    import jax.numpy as jnp

    return np.dtype(jnp.result_type(float))


def check_representable(option: str, value: float, dtype=None) -> None:
    """Refuse (:class:`UsageError`, naming ``option``) a value the working dtype holds as inf."""
    dtype = np.dtype(dtype or working_dtype())
    if abs(value) > float(np.finfo(dtype).max):
        raise UsageError(f"{option} {value:g}: larger than {dtype.name} can hold "
                         f"({float(np.finfo(dtype).max):.3g})")


def check_resolution(option: str, value: float, noise: float, noise_option: str,
                     dtype=None, fraction: float = 1e-2) -> None:
    """Refuse a location ``value`` and noise scale ``noise`` the working dtype cannot resolve.

    A Monte Carlo draw ``value + noise·z`` is rounded by about |value|·u in a dtype with
    machine epsilon u; above ``fraction``·noise that rounding is no longer negligible next to
    the noise (float32, μ = 1e10 with σ = 1 gave E_S = 1.1 instead of 2σ² = 2, and μ = 1e19
    overflowed to E_C = inf).  Refused (:class:`UsageError`, naming the option):
    |value|·u > fraction·noise; squared errors (|value| + 10·noise)² that come within a
    factor 10⁴ of overflowing; a noise whose square underflows.
    """
    dtype = np.dtype(dtype or working_dtype())
    info = np.finfo(dtype)
    eps, tiny, big = float(info.eps), float(info.tiny), float(info.max)
    if noise**2 < tiny / eps:
        raise UsageError(f"{noise_option} {noise:g}: too small for {dtype.name} "
                         f"(its square underflows; at least {np.sqrt(tiny / eps):.3g})")
    if (abs(value) + 10 * noise) ** 2 > big * 1e-4:
        name, v = (option, value) if abs(value) > noise else (noise_option, noise)
        raise UsageError(f"{name} {v:g}: too large for {dtype.name} (squared errors would "
                         f"overflow; |{option}| + 10 {noise_option} at most "
                         f"{np.sqrt(big * 1e-4):.3g})")
    limit = fraction * noise / eps
    if abs(value) > limit:
        raise UsageError(f"{option} {value:g}: too large for {dtype.name} next to "
                         f"{noise_option} {noise:g} (rounding would hide the noise; "
                         f"at most {limit:.3g})")


MEMORY_FRACTION = 0.5
"""A run may plan to use at most this fraction of the memory available when it starts."""


def available_memory() -> int:
    """Bytes of memory available now: ``MemAvailable`` of /proc/meminfo, else sysconf."""
    import os

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover (not POSIX)
        return 1 << 62


def _bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 2**10:.3g} KiB"


def check_memory(estimate: float, options: str) -> None:
    """Refuse a run whose estimated memory (bytes) is over ``MEMORY_FRACTION`` of what is free.

    The message names ``options`` (the ones that set the size), the estimate and the limit.
    """
    limit = MEMORY_FRACTION * available_memory()
    if estimate > limit:
        raise UsageError(f"{options}: needs about {_bytes(estimate)} of memory, more than "
                         f"{MEMORY_FRACTION:.0%} of the {_bytes(limit / MEMORY_FRACTION)} "
                         "available; use smaller values")


def strict_json(obj):
    """``obj`` made strict JSON (RFC 8259): every NaN / ±inf becomes ``null``.

    Returns ``(clean, non_finite)``: ``clean`` holds only dicts, lists, str, int, finite
    floats, bools and None (NumPy / JAX scalars and arrays become numbers and lists);
    ``non_finite`` maps the JSON Pointer (RFC 6901) of each replaced number to what it was
    (``"nan"``, ``"inf"`` or ``"-inf"``).
    """
    non_finite = {}

    def walk(x, path):
        if isinstance(x, dict):
            return {str(k): walk(v, f"{path}/{_pointer_token(k)}") for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(x)]
        if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
            arr = np.asarray(x)
            return walk(arr.tolist() if arr.ndim else arr.item(), path)
        if isinstance(x, (bool, np.bool_)) or x is None or isinstance(x, str):
            return bool(x) if isinstance(x, np.bool_) else x
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            v = float(x)
            if math.isfinite(v):
                return v
            non_finite[path] = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
            return None
        return x

    return walk(obj, ""), non_finite


def _pointer_token(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def dumps_strict(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`strict_json` (``allow_nan=False``).

    For a dict, the replaced numbers are listed under a top-level ``"non_finite"`` key
    (JSON Pointer → ``"nan"`` / ``"inf"`` / ``"-inf"``; ``{}`` when every number is finite).
    """
    import json

    clean, non_finite = strict_json(obj)
    if isinstance(clean, dict):
        clean = {**clean, "non_finite": non_finite}
    return json.dumps(clean, allow_nan=False, **kwargs)
