"""Noise laws for the Monte Carlo engine (issue 16, the paper's open question 3).

Each law is a small immutable pytree (a ``NamedTuple``) whose :meth:`sample` draws
standardised noise z with E z = 0 and Var z = 1 per coordinate; the engine
(:func:`cljax.experiments.gaussian.studies.monte_carlo`) multiplies by σ, so every law
has the same variance σ² per coordinate and only the shape of the distribution differs:

* :class:`Gaussian`: z ~ N(0, 1) (the paper's model; the engine's draws are unchanged);
* :class:`StudentT`: z = √((ν − 2)/ν) · t_ν, ν > 2 (excess kurtosis 6/(ν − 4) for ν > 4,
  infinite for 2 < ν ≤ 4);
* :class:`Laplace`: z = Laplace(0, b = 1/√2) (excess kurtosis 3);
* :class:`Contaminated`: z = c · g · (1 with probability 1 − p, k with probability p),
  g ~ N(0, 1), k = 10, c = 1/√(1 − p + p k²) (excess kurtosis
  3 (1 − p + p k⁴)/(1 − p + p k²)² − 3).

:func:`parse_noise` reads the command-line spec strings ``"gaussian"``,
``"student-t:3"``, ``"laplace"``, ``"contaminated:0.1"`` (``"contaminated"`` alone:
p = 0.1); :func:`parse_noise_list` a comma-separated list of them.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

__all__ = ["Gaussian", "StudentT", "Laplace", "Contaminated", "NoiseLaw", "parse_noise",
           "parse_noise_list", "NOISE_SPECS", "DEFAULT_CONTAMINATION", "CONTAMINATION_SCALE"]

DEFAULT_CONTAMINATION = 0.1
CONTAMINATION_SCALE = 10.0


class Gaussian(NamedTuple):
    """Standard normal noise, z ~ N(0, 1): the paper's model (DESIGN §5)."""

    @property
    def spec(self) -> str:
        """The spec string :func:`parse_noise` reads back: ``"gaussian"``."""
        return "gaussian"

    @property
    def excess_kurtosis(self) -> float:
        """E z⁴ − 3 = 0."""
        return 0.0

    def sample(self, key, shape, dtype=None):
        """``jax.random.normal(key, shape, dtype)`` (the engine's draws before issue 16)."""
        return jax.random.normal(key, shape, dtype or jnp.result_type(float))


class StudentT(NamedTuple):
    """Student-t noise with ``df`` = ν > 2 degrees of freedom, scaled to variance 1.

    z = √((ν − 2)/ν) · t_ν, since Var t_ν = ν/(ν − 2).
    """

    df: float

    @property
    def spec(self) -> str:
        """``"student-t:ν"``."""
        return f"student-t:{self.df:g}"

    @property
    def excess_kurtosis(self) -> float:
        """6/(ν − 4) for ν > 4; ``inf`` for 2 < ν ≤ 4."""
        return 6.0 / (self.df - 4.0) if self.df > 4 else math.inf

    def sample(self, key, shape, dtype=None):
        """Draws of √((ν − 2)/ν) · t_ν."""
        dtype = dtype or jnp.result_type(float)
        df = jnp.asarray(self.df, dtype)
        return jnp.sqrt((df - 2) / df) * jax.random.t(key, df, shape, dtype)


class Laplace(NamedTuple):
    """Laplace (double-exponential) noise with scale b = 1/√2, so Var z = 2b² = 1."""

    @property
    def spec(self) -> str:
        """``"laplace"``."""
        return "laplace"

    @property
    def excess_kurtosis(self) -> float:
        """E z⁴/(E z²)² − 3 = 24 b⁴/(2b²)² − 3 = 3."""
        return 3.0

    def sample(self, key, shape, dtype=None):
        """Draws of Laplace(0, 1)/√2."""
        dtype = dtype or jnp.result_type(float)
        return jax.random.laplace(key, shape, dtype) / jnp.sqrt(jnp.asarray(2.0, dtype))


class Contaminated(NamedTuple):
    """Contaminated Gaussian: N(0, 1) with probability 1 − p, N(0, k²) with probability p,
    scaled by c = 1/√(1 − p + p k²) to variance 1 (k = ``scale`` = 10)."""

    p: float = DEFAULT_CONTAMINATION
    scale: float = CONTAMINATION_SCALE

    @property
    def spec(self) -> str:
        """``"contaminated:p"``."""
        return f"contaminated:{self.p:g}"

    @property
    def excess_kurtosis(self) -> float:
        """3 (1 − p + p k⁴)/(1 − p + p k²)² − 3."""
        p, k = self.p, self.scale
        return 3.0 * (1 - p + p * k**4) / (1 - p + p * k**2) ** 2 - 3.0

    def sample(self, key, shape, dtype=None):
        """Draws of c · g · (k if the draw is contaminated else 1), g ~ N(0, 1)."""
        dtype = dtype or jnp.result_type(float)
        k_normal, k_flag = jax.random.split(key)
        p = jnp.asarray(self.p, dtype)
        k = jnp.asarray(self.scale, dtype)
        flag = jax.random.bernoulli(k_flag, p, shape)
        c = jax.lax.rsqrt(1 - p + p * k**2)
        return c * jnp.where(flag, k, 1) * jax.random.normal(k_normal, shape, dtype)


NoiseLaw = Union[Gaussian, StudentT, Laplace, Contaminated]

NOISE_SPECS = "gaussian, student-t:NU (NU > 2), laplace, contaminated[:P] (0 < P < 1)"


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{spec!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{spec!r}: {text!r} is not a finite number")
    return value


def parse_noise(spec: str) -> NoiseLaw:
    """The noise law of one spec string (case and surrounding spaces ignored).

    ``"gaussian"``, ``"student-t:ν"`` (ν > 2), ``"laplace"``, ``"contaminated"`` or
    ``"contaminated:p"`` (0 < p < 1; default p = 0.1).

    Raises:
        ValueError: an unknown law or a bad parameter, naming the spec and what is accepted.
    """
    text = spec.strip().lower()
    name, _, param = text.partition(":")
    if name == "gaussian" and not param:
        return Gaussian()
    if name == "laplace" and not param:
        return Laplace()
    if name == "student-t":
        if not param:
            raise ValueError(f"{spec!r}: student-t needs its degrees of freedom, e.g. student-t:3")
        df = _number(param, spec)
        if not df > 2:
            raise ValueError(f"{spec!r}: student-t needs nu > 2 (finite variance), got {param}")
        return StudentT(df)
    if name == "contaminated":
        p = _number(param, spec) if param else DEFAULT_CONTAMINATION
        if not 0 < p < 1:
            raise ValueError(f"{spec!r}: contaminated needs 0 < p < 1, got {param}")
        return Contaminated(p)
    raise ValueError(f"{spec!r}: unknown noise law (use {NOISE_SPECS})")


def parse_noise_list(text: str) -> list[NoiseLaw]:
    """The laws of a comma-separated list of specs (``"gaussian,student-t:3"``), in order.

    Raises:
        ValueError: an empty list, a bad spec (:func:`parse_noise`) or a law listed twice.
    """
    laws = [parse_noise(part) for part in text.split(",") if part.strip()]
    if not laws:
        raise ValueError(f"{text!r}: no noise law (use {NOISE_SPECS})")
    specs = [law.spec for law in laws]
    for spec in specs:
        if specs.count(spec) > 1:
            raise ValueError(f"{text!r}: {spec} is listed twice")
    return laws
