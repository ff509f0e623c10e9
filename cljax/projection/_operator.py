"""The cross-learning projection P_C: one operator, three algorithms (DESIGN §2).

Given points a_1..a_T (a task tree), a_g (a global tree), task weights w_t > 0
and a global weight w_g ≥ 0, solve

    min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖²   s.t. ‖θ_t − θ_g‖ ≤ ε.

w_g = 1 is the ADMM z-step (Algorithm 1); w_g = 0 is the cross-learning
estimator P̄_CL of the Gaussian model.  With θ_g = c fixed each θ_t is the ball
projection of a_t onto B(c, ε), so c minimises F(c) = Σ_j w_j (‖c − a_j‖ − ε_j)₊²
(:mod:`cljax.projection._terms`, where every term of every algorithm lives).
Every algorithm runs semismooth Newton on F with an exact line search (the plain fixed
point of EUSIPCO eq. 13 can stall far from the optimum, DESIGN §2):

* ``"dual"`` (Gram): c = a_ref + Σ_j κ_j (a_j − a_ref).  Every quantity comes
  from the (T+1)×(T+1) Gram matrix G of the points relative to a_ref (a point of
  the cloud, so no cancellation), formed once in one streaming pass (chunked, no
  copy of the input); an iteration costs three products with G, one elementwise
  pass and the inner Newton system (conjugate gradients when it is well
  conditioned, else LU, O(T³); :func:`._terms.solve_inner`), nothing per
  parameter; θ is rebuilt from the original leaves.
* ``"primal"``: the same Newton iteration held in parameter space: the S × S
  Hessian when S ≤ T + 1 (then, with w_g = 0, also the two-active-task closed
  form, where F is flat and Newton only linear), else the inner products of
  v_j = c − a_j recomputed at every iteration, O(T² S).
* ``"fixed"``: exactly ``max_iter`` (default 16) of those S × S Newton steps,
  no while loop (every instance of a vmapped batch does the same work), then
  the closed form.  :func:`project_centre_newton` is this algorithm.
* ``"auto"`` (default): ``"primal"`` for at most 3 parameters and 64 tasks (the
  S × S Newton, stopping as soon as a vmapped batch has converged: the fastest
  for many tiny problems, benchmarks/bench_projection.py case a), else ``"dual"``.

Every algorithm takes its steps with the exact line search of
:func:`._terms.exact_line_search` (the step in [0, 1] minimising F along the
Newton ray, to 2⁻⁸).

Gradients: the iteration runs on stopped gradients, then one full Newton step is
taken differentiably from the solution.  At a solution the Newton map has zero
Jacobian in its starting point, so this gives the implicit-function derivative
(forward and reverse mode) for one extra solve.

Degeneracies: ε = 0 gives the weighted mean (consensus); ε = ∞ (or any ε beyond
twice the points' spread, :func:`cljax.projection._terms.clip_radius`) gives
θ_t = a_t; a_t = c gives finite values and gradients.  With w_g = 0, c is not
unique when all a_t fit in one ball of radius ε: the result is the point Newton
reaches from the weighted mean of the a_t (the mean itself when it already
fits); the θ_t are unique and equal the a_t.  There, **on purpose, the derivative
of θ_g is set to 0** (θ_g is any point of a set) and that of θ_t to the identity.

Non-finite inputs: a NaN or inf in any a_j propagates to the outputs (the tasks
are coupled through c); ``residual`` is then NaN and ``converged`` False.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cljax._src import checks as checks
from cljax._src.tree import per_task_sq_norm, safe_sqrt, sq_norm, sub
from cljax.projection import _terms as terms

PyTree = Any
Solver = Literal["auto", "dual", "primal", "fixed"]
SOLVERS = ("auto", "dual", "primal", "fixed")

DEFAULT_MAX_ITER = 100  # while-loop solvers
FIXED_ITERATIONS = 16  # "fixed": Newton steps taken (the fuzz test needs up to 16)
BISECTIONS = 8  # exact line search on [0, 1]: bisections on the slope
SMALL_MAX_PARAMS = 3  # "auto" picks "primal" (S × S Newton) up to this many parameters ...
SMALL_MAX_TASKS = 64  # ... and this many tasks
CHUNK = 32768  # "dual": columns per block of the streaming Gram pass


class ProjectionResult(NamedTuple):
    """Output of :func:`project_cross_learning` (every algorithm).

    Attributes:
      task_params: θ_1..θ_T, a task tree.
      global_params: θ_g = c, a global tree.
      iterations: Newton iterations taken.
      residual: length of the Newton step at the last iterate, an estimate of the
        distance of θ_g to the solution in parameter units (one more Newton step
        follows it); NaN when an input is not finite.
      converged: residual ≤ tol · (spread of the points), and every input finite.
    """

    task_params: PyTree
    global_params: PyTree
    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


# ---------------------------------------------------------------------------
# Validation and the problem in flat form
# ---------------------------------------------------------------------------


class _Problem(NamedTuple):
    tasks: list  # (T, m_l) per leaf, compute dtype
    globals_: list  # (m_l,) per leaf
    task_leaves: list  # the original leaves (shapes, dtypes)
    global_leaves: list
    treedef: Any
    w: jax.Array  # (n,) weights [w_g, w_1..w_T]
    eps: jax.Array
    dtype: Any


def _resolve_solver(solver, method):
    if method is not None:
        if solver not in (None, "auto") and solver != method:
            raise ValueError(f"solver={solver!r} and method={method!r} disagree; pass one")
        solver = method
    solver = "auto" if solver is None else solver
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    return solver


def _prepare(task_params, global_params, eps, task_weights, global_weight) -> _Problem:
    t = checks.task_count(task_params, "task_params")
    checks.check_float_leaves(task_params, "task_params")
    checks.check_nonempty_leaves(task_params, "task_params", lead=1)
    global_weight = checks.check_scalar_weight(global_weight)
    if global_params is None:
        # a_g does not enter the problem when w_g = 0; a task point will do.
        if checks.is_concrete(global_weight):
            if float(np.asarray(global_weight)) != 0:
                raise ValueError(f"global_params=None needs global_weight=0, got {global_weight}")
        else:
            global_weight = eqx.error_if(global_weight, global_weight != 0,
                                         "global_params=None needs global_weight=0")
        global_params = jax.tree_util.tree_map(lambda x: x[0], task_params)
    checks.check_float_leaves(global_params, "global_params")
    checks.check_global_matches(task_params, global_params)
    eps = checks.check_eps(eps)
    task_leaves, treedef = jax.tree_util.tree_flatten(task_params)
    global_leaves = jax.tree_util.tree_leaves(global_params)
    # Half-precision points are projected in float32 and the result cast back.
    dtype = jnp.promote_types(jnp.result_type(*task_leaves, *global_leaves), jnp.float32)
    if task_weights is None:
        task_weights = jnp.ones((t,), dtype)
    task_weights = checks.check_weights(task_weights, t)
    w = jnp.concatenate([jnp.reshape(jnp.asarray(global_weight), (1,)),
                         jnp.asarray(task_weights)]).astype(dtype)
    tasks = [jnp.asarray(x, dtype).reshape(t, -1) for x in task_leaves]
    globals_ = [jnp.asarray(x, dtype).reshape(-1) for x in global_leaves]
    return _Problem(tasks, globals_, task_leaves, global_leaves, treedef, w,
                    jnp.asarray(eps, dtype), dtype)


def _pow2(big):
    """A power of two near ``big`` (1 where big is 0 or not finite)."""
    ok = jnp.isfinite(big) & (big > 0)
    return jnp.where(ok, jnp.exp2(jnp.round(jnp.log2(jnp.where(ok, big, 1.0)))), 1.0)


def _auto(problem) -> str:
    t = problem.tasks[0].shape[0]
    s = sum(x.shape[1] for x in problem.tasks)
    return "primal" if (s <= SMALL_MAX_PARAMS and t <= SMALL_MAX_TASKS) else "dual"


# ---------------------------------------------------------------------------
# Gram matrix in one streaming pass: no centred, scaled or stacked copy
# ---------------------------------------------------------------------------


def _accumulate(state, block):
    """Add the Gram matrix of ``block`` (n, k) to (G, U), G in units of U².

    U is a power of two near the largest |entry| seen, raised as blocks come in
    (G rescaled exactly by a power of two), so G neither overflows nor underflows.
    """
    gram, unit = state
    new_unit = jnp.maximum(unit, _pow2(jnp.max(jnp.abs(block))))
    y = block / new_unit
    gram = gram * (unit / new_unit) ** 2 + lax.dot_general(
        y, y, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
    return gram, new_unit


def _block(task, glob, ref):
    """Rows [a_g; a_1..a_T] − a_ref of one block of columns, (n, k)."""
    return jnp.concatenate([glob[None], task], axis=0) - ref[None]


def _gram(problem, refs):
    """(G, U): Gram matrix of (a_j − a_ref)/U over all leaves, and the unit U."""
    n = problem.tasks[0].shape[0] + 1
    dtype = problem.dtype
    state = (jnp.zeros((n, n), dtype), jnp.zeros((), dtype))
    for task, glob, ref in zip(problem.tasks, problem.globals_, refs):
        m = task.shape[1]
        full = (m // CHUNK) * CHUNK if m > CHUNK else 0
        if full:
            def body(st, i, task=task, glob=glob, ref=ref):
                sl = functools.partial(lax.dynamic_slice_in_dim, start_index=i * CHUNK,
                                       slice_size=CHUNK, axis=-1)
                return _accumulate(st, _block(sl(task), sl(glob), sl(ref))), None

            state, _ = lax.scan(body, state, jnp.arange(m // CHUNK))
        if m > full:
            state = _accumulate(state, _block(task[:, full:], glob[full:], ref[full:]))
    return state


# ---------------------------------------------------------------------------
# The Newton loop (dual and primal)
# ---------------------------------------------------------------------------


class _LoopState(NamedTuple):
    point: Any  # κ (dual), c (primal)
    step: Any  # what ``move`` needs: γ (dual), Δc (primal)
    search: terms.Search
    residual: jax.Array
    iteration: jax.Array


def _newton_loop(point0, measure, move, radii, w, stop_at, max_iter):
    """Semismooth Newton with the shared exact line search, as a ``lax.while_loop``.

    ``measure(point)`` gives (step, search terms, residual) and
    ``move(point, step, tau)`` takes the step.
    """

    def cond(s):
        return (s.iteration < max_iter) & ~(s.residual <= stop_at)

    def body(s):
        tau = terms.exact_line_search(s.search, radii, w, BISECTIONS)
        point = move(s.point, s.step, tau)
        return _LoopState(point, *measure(point), s.iteration + 1)

    init = _LoopState(point0, *measure(point0), jnp.asarray(0, jnp.int32))
    return lax.while_loop(cond, body, init)


def _spread(q, w):
    """max_j ‖a_j − m‖ over the points with w_j > 0, from q_j = ‖m − a_j‖²."""
    return safe_sqrt(jnp.max(jnp.where(w > 0, q, 0.0)))


def _solve_dual(problem, tol, max_iter):
    """Gram / dual-domain Newton.  Returns (c leaves, θ_t leaves, loop, F at the end, stop_at)."""
    w, dtype = problem.w, problem.dtype
    n = w.shape[0]
    total = jnp.sum(w)
    u = w / total
    refs = [task[0] for task in problem.tasks]
    gram, unit = _gram(problem, refs)
    unit = lax.stop_gradient(unit)

    def sq_distances(kappa, G):
        """q_j = ‖c − a_j‖² for c = a_ref + Σ_k κ_k (a_k − a_ref)."""
        gk = G @ kappa
        return jnp.diagonal(G) - 2.0 * gk + kappa @ gk

    spread = _spread(sq_distances(u, gram), w)
    radii = terms.radii_of(terms.clip_radius(problem.eps / unit, spread), n, dtype)
    stop_at = tol * spread

    def measure_with(G, radii, w, total):
        def measure(kappa):
            # Δc = Σ β_j (c − a_j) = Σ γ_k (a_k − a_ref); ‖Δc‖² = γᵀGγ.
            _, search, _, gamma = terms.newton_gram(G, radii, w, total, kappa)
            return gamma, search, safe_sqrt(search.h)
        return measure

    def move(kappa, gamma, tau):
        return kappa + tau * gamma

    @jax.custom_jvp
    def solution(G, radii, w, total, u, stop_at):
        """κ* (the loop's last iterate plus its Newton step, already measured), the
        residual and the iteration count (as a float, for the tangent rule)."""
        loop = _newton_loop(u, measure_with(G, radii, w, total), move, radii, w,
                            stop_at, max_iter)
        return loop.point + loop.step, loop.residual, loop.iteration.astype(G.dtype)

    @solution.defjvp
    def _(primals, tangents):
        # Implicit derivative: one Newton step from κ*, differentiated (its Jacobian
        # in the starting point vanishes at a solution).  Only traced when derivatives
        # are asked for: a plain call does no extra O(T³) solve.
        out = solution(*primals)
        _, tangent = jax.jvp(lambda *args: measure_with(*args)(out[0])[0], primals[:4],
                             tangents[:4])
        return out, (tangent, jnp.zeros_like(out[1]), jnp.zeros_like(out[2]))

    kappa, residual, iteration = solution(gram, radii, w, total, lax.stop_gradient(u),
                                          lax.stop_gradient(stop_at))
    loop = _LoopState(None, None, None, lax.stop_gradient(residual),
                      lax.stop_gradient(iteration).astype(jnp.int32))
    q = sq_distances(kappa, gram)
    _, rho, _, _ = terms.distance_terms(q, radii, w)
    # Rebuild from the original leaves: c = a_ref + Σ_k κ_k (a_k − a_ref),
    # θ_t = a_t + ρ_t (c − a_t).  For few tasks, as sums of broadcast terms
    # (one fused pass, no copy); else as a matrix product.
    finite = jnp.all(jnp.isfinite(jnp.diagonal(gram)))
    cs, thetas = [], []
    for task, glob, ref in zip(problem.tasks, problem.globals_, refs):
        if n <= 17:
            c = ref + kappa[0] * (glob - ref)
            for k in range(1, n):
                c = c + kappa[k] * (task[k - 1] - ref)
        else:
            c = ref + kappa[0] * (glob - ref) + kappa[1:] @ (task - ref[None])
        cs.append(c)
        thetas.append(task + rho[1:, None] * (c[None] - task))
    return cs, thetas, loop, terms.objective(q, radii, w), stop_at, unit, finite


def _rows(problem):
    """Stacked scaled rows (a_j − m)/U of every leaf, the anchors m and the unit U."""
    w = problem.w
    total = jnp.sum(w)
    rows = [jnp.concatenate([g[None], t], axis=0) for t, g in zip(problem.tasks, problem.globals_)]
    anchors = [(w @ r) / total for r in rows]
    big = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(r - m[None]))
                                         for r, m in zip(rows, anchors)])
    unit = lax.stop_gradient(_pow2(big))
    return [(r - m[None]) / unit for r, m in zip(rows, anchors)], anchors, unit, jnp.isfinite(big)


def _radii_and_stop(xs, problem, tol):
    q = sum(jnp.sum(x * x, axis=1) for x in xs)
    spread = _spread(q, problem.w)
    n = problem.w.shape[0]
    return terms.radii_of(terms.clip_radius(problem.eps, spread), n, problem.dtype), tol * spread


def _solve_primal(problem, tol, max_iter, fixed=False):
    w, dtype = problem.w, problem.dtype
    total = jnp.sum(w)
    xs, anchors, unit, finite = _rows(problem)
    problem = problem._replace(eps=problem.eps / unit)
    radii, stop_at = _radii_and_stop(xs, problem, tol)
    frozen = [lax.stop_gradient(v) for v in (radii, w, total)]
    loop_args = (frozen[0], frozen[1], lax.stop_gradient(stop_at), max_iter)
    num_params = sum(x.shape[1] for x in xs)
    n = w.shape[0]

    if fixed or num_params <= n:
        # Few parameters: Newton on the S × S Hessian, on the stacked rows.
        points = jnp.concatenate(xs, axis=1)

        def measure_with(points, radii, w, total):
            def measure(c):
                step, search, _, _ = terms.newton_parameter(c[None] - points, radii, w, total)
                return step, search, safe_sqrt(search.h)
            return measure

        if fixed:
            c = fixed_newton(points, radii, w, max_iter)
            loop = _LoopState(None, None, None, None, jnp.asarray(max_iter, jnp.int32))
        else:
            loop = _newton_loop(jnp.zeros((num_params,), dtype),
                                measure_with(lax.stop_gradient(points), *frozen),
                                lambda c, step, tau: c + tau * step, *loop_args)
            c = _pair_polish(lax.stop_gradient(loop.point), lax.stop_gradient(points),
                             *frozen[:2])
        step, search, residual = measure_with(points, radii, w, total)(c)
        loop = loop._replace(search=search, residual=lax.stop_gradient(residual))
        c = c + step
        bounds = np.cumsum([0] + [x.shape[1] for x in xs])
        c_leaves = [c[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    else:
        def measure_with(points, radii, w, total):
            def measure(c):
                vs = [cl[None] - r for cl, r in zip(c, points)]
                beta, search, _, _ = terms.newton_gram(sum(v @ v.T for v in vs), radii, w, total)
                # Δc formed explicitly: its norm without cancellation.
                delta = [beta @ v for v in vs]
                h = sq_norm(delta)
                return delta, search._replace(h=h), safe_sqrt(h)
            return measure

        loop = _newton_loop([jnp.zeros_like(m) for m in anchors],
                            measure_with([lax.stop_gradient(x) for x in xs], *frozen),
                            lambda c, d, tau: [cl + tau * dl for cl, dl in zip(c, d)],
                            *loop_args)
        c = [lax.stop_gradient(cl) for cl in loop.point]
        delta, _, _ = measure_with(xs, radii, w, total)(c)
        c_leaves = [cl + dl for cl, dl in zip(c, delta)]
    q = sum(jnp.sum((cl[None] - x) ** 2, axis=1) for cl, x in zip(c_leaves, xs))
    _, rho, _, _ = terms.distance_terms(q, radii, w)
    cs = [m + unit * cl for m, cl in zip(anchors, c_leaves)]
    thetas = [t + rho[1:, None] * (c[None] - t) for t, c in zip(problem.tasks, cs)]
    return cs, thetas, loop, terms.objective(q, radii, w), stop_at, unit, finite


# ---------------------------------------------------------------------------
# "fixed": a fixed number of safeguarded Newton steps (tiny problems)
# ---------------------------------------------------------------------------


def _pair_polish(c, points, radii, w):
    """With w_g = 0 and T ≥ 2, the two-active-task closed form
    (:func:`._terms.pair_point`) replaces c if it is at least as good."""
    if points.shape[0] < 3:
        return c
    q = jnp.sum((c[None] - points) ** 2, axis=1)
    pair = terms.pair_point(points[1:], w[1:], radii[1], q[1:])
    f = terms.objective(q, radii, w)
    f_pair = terms.objective(jnp.sum((pair[None] - points) ** 2, axis=1), radii, w)
    return jnp.where((w[0] == 0) & (f_pair <= f), pair, c)


def fixed_newton(points, radii, w, iterations: int):
    """c minimising F for ``points`` (n, S) (row 0 the global point), no while loop.

    Exactly ``iterations`` Newton steps in parameter space (the step of
    ``"primal"`` for S ≤ T + 1), each with the exact line search, from the
    weighted mean (exact at ε = 0 and whenever every a_t lies within ε of it),
    then the two-task closed form.  Returns c on stopped gradients.
    """
    points, radii, w = (lax.stop_gradient(x) for x in (points, radii, w))
    total = jnp.sum(w)

    def body(_, c):
        step, search, _, _ = terms.newton_parameter(c[None] - points, radii, w, total)
        return c + terms.exact_line_search(search, radii, w, BISECTIONS) * step

    c = lax.fori_loop(0, iterations, body, (w @ points) / total)
    return _pair_polish(c, points, radii, w)


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def project_cross_learning(
    task_params: PyTree,
    global_params: PyTree | None,
    eps,
    *,
    task_weights=None,
    global_weight=1.0,
    solver: Solver | None = None,
    tol: float | None = None,
    max_iter: int | None = None,
    method: Solver | None = None,
) -> ProjectionResult:
    """Project onto the cross-learning set {‖θ_t − θ_g‖ ≤ ε} (DESIGN §2).

    Solves min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖² s.t. ‖θ_t − θ_g‖ ≤ ε,
    whose stationarity conditions are EUSIPCO eqs. 12–13:
    c = (w_g a_g + Σ w_t ρ_t a_t)/(w_g + Σ w_t ρ_t), θ_t = (1 − ρ_t) a_t + ρ_t c.

    With w_g = 0 and every a_t within ε of one point, θ_t = a_t and θ_g is not
    unique: the derivative of θ_g is then set to 0 on purpose (that of θ_t is the
    identity).  A NaN or inf in any input gives residual NaN, converged False.

    Args:
      task_params: a_1..a_T, a pytree whose leaves have a leading task axis T.
      global_params: a_g, the same pytree without the task axis.  May be None
        when ``global_weight=0``.
      eps: the radius ε ≥ 0, a scalar (``inf`` allowed).
      task_weights: w_t > 0, shape (T,); default all ones.
      global_weight: w_g ≥ 0 (1 for the ADMM z-step, 0 for the estimator).
      solver: ``"auto"`` (default), ``"dual"`` (Gram matrix, cost per iteration
        independent of the parameter count), ``"primal"`` (Newton in parameter
        space) or ``"fixed"`` (a fixed number of Newton steps, no while loop).
        ``"auto"`` picks ``"primal"`` for tiny problems (≤ 3 parameters), else
        ``"dual"``.  See the module docstring.
      tol: converged when the last Newton step ≤ tol × (spread of the points);
        default √(machine epsilon) of the dtype.  One more Newton step follows.
      max_iter: cap on Newton iterations (default 100); for ``"fixed"``, the
        number of iterations taken (default 16).
      method: the former name of ``solver``, still accepted.

    Returns:
      A :class:`ProjectionResult`.
    """
    solver = _resolve_solver(solver, method)
    if not (max_iter is None or (isinstance(max_iter, int) and not isinstance(max_iter, bool)
                                 and max_iter >= 0)):
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    problem = _prepare(task_params, global_params, eps, task_weights, global_weight)
    if tol is None:
        tol = float(np.sqrt(jnp.finfo(problem.dtype).eps))
    checks.check_positive(tol, "tol")
    if not checks.is_concrete(tol):
        raise ValueError("tol must be a concrete number (it is a static setting), got a "
                         "traced value")
    if solver == "auto":
        solver = _auto(problem)
    if max_iter is None:
        max_iter = FIXED_ITERATIONS if solver == "fixed" else DEFAULT_MAX_ITER
    thetas, cs, iterations, residual, converged = _solve(
        problem.tasks, problem.globals_, problem.w, problem.eps, solver=solver,
        tol=float(tol), max_iter=max_iter)
    task_out = [th.reshape(tl.shape).astype(tl.dtype)
                for th, tl in zip(thetas, problem.task_leaves)]
    global_out = [c.reshape(gl.shape).astype(gl.dtype)
                  for c, gl in zip(cs, problem.global_leaves)]
    return ProjectionResult(
        task_params=jax.tree_util.tree_unflatten(problem.treedef, task_out),
        global_params=jax.tree_util.tree_unflatten(problem.treedef, global_out),
        iterations=iterations,
        residual=residual,
        converged=converged,
    )


@functools.partial(jax.jit, static_argnames=("solver", "tol", "max_iter"))
def _solve(tasks, globals_, w, eps, *, solver, tol, max_iter):
    """The numeric core on flat leaves (T, m_l) / (m_l,), jitted: an eager call of
    :func:`project_cross_learning` reuses the compiled program for the same shapes
    (inside a user's jit it is inlined).  Returns (θ leaves, c leaves, iterations,
    residual, converged), in the compute dtype."""
    num_params = sum(x.shape[1] for x in tasks)
    if (solver != "dual" and num_params <= w.shape[0] and CHUNK_BYTES > 0
            and jax.default_backend() == "cpu" and jax.device_count() == 1):
        chunk = _chunk_size(w.shape[0] * num_params * w.dtype.itemsize)
        return _batched_in_chunks(solver, tol, max_iter, chunk)(tasks, globals_, w, eps)
    return _solve_flat(tasks, globals_, w, eps, solver=solver, tol=tol, max_iter=max_iter)


def _solve_flat(tasks, globals_, w, eps, *, solver, tol, max_iter):
    problem = _Problem(tasks, globals_, None, None, None, w, eps, w.dtype)
    if solver == "dual":
        out = _solve_dual(problem, tol, max_iter)
    else:
        out = _solve_primal(problem, tol, max_iter, fixed=solver == "fixed")
    return _finish(problem, *out)


CHUNK_BYTES = 16384  # CPU: bytes of one (instances, n, S) array per step of a vmapped batch
# (0: no chunks, the plain vmap; read when a program is traced)


def _chunk_size(instance_bytes: int) -> int:
    """The largest power of two of instances whose (n, S) points fit in ``CHUNK_BYTES``."""
    return 1 << max(0, (CHUNK_BYTES // max(instance_bytes, 1)).bit_length() - 1)


@functools.lru_cache(maxsize=None)
def _batched_in_chunks(solver, tol, max_iter, chunk):
    """The small-problem core (CPU), whose ``vmap`` runs ``chunk`` instances at a time.

    A vmapped batch of tiny problems is memory-bound on CPU: every pass of the
    Newton loop streams the whole batch through the caches.  In chunks whose
    arrays stay in the L1/L2 caches (``lax.map`` with ``batch_size``) the same
    arithmetic runs 2-3× faster, and each chunk's while loop stops when its own
    instances have converged (``benchmarks/bench_projection.py``, case a).  The
    answers are those of the plain vmap, instance by instance.  Derivatives (the
    ``custom_jvp`` rule) differentiate the plain core, vmapped as usual.  Used with
    one CPU device only: a batch sharded over devices keeps the plain vmap (a loop
    over chunks of a sharded axis would gather it).
    """
    plain = functools.partial(_solve_flat, solver=solver, tol=tol, max_iter=max_iter)
    chunked = jax.custom_batching.custom_vmap(plain)

    @chunked.def_vmap
    def _rule(axis_size, in_batched, *args):
        leaves, treedef = jax.tree_util.tree_flatten(args)
        flags = jax.tree_util.tree_leaves(in_batched)
        batched = [x for x, b in zip(leaves, flags) if b]

        def one(xs):
            it = iter(xs)
            full = [next(it) if b else x for x, b in zip(leaves, flags)]
            return plain(*jax.tree_util.tree_unflatten(treedef, full))

        if axis_size <= chunk:
            out = jax.vmap(one)(batched)
        else:
            out = lax.map(one, batched, batch_size=chunk)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    core = jax.custom_jvp(chunked)

    @core.defjvp
    def _jvp(primals, tangents):
        out, out_dot = jax.jvp(plain, primals, tangents)
        # Under vmap the rule above batches every output; so must this rule (an
        # output that depends on unbatched inputs only, e.g. "fixed"'s count, would
        # not be): each output is tied to every input through an empty slice.
        tie = sum(jnp.sum(x.reshape(-1)[:0]) for x in jax.tree_util.tree_leaves(primals)) == 0
        return jax.tree_util.tree_map(lambda o: jnp.where(tie, o, o), out), out_dot

    return core


def _finish(problem, cs, thetas, loop, f_end, stop_at, unit, finite):
    """Derivative convention where F is flat, non-finite inputs."""
    w = problem.w
    # w_g = 0 and F ≈ 0 to the tolerance: every task fits in one ball of radius ε;
    # θ_t = a_t on a neighbourhood (Jacobian I) and θ_g, any point of a set, gets
    # a zero derivative.
    flat = lax.stop_gradient((w[0] == 0) & (f_end <= 4.0 * jnp.sum(w) * stop_at**2))
    thetas = [jnp.where(flat, t + lax.stop_gradient(th - t), th)
              for t, th in zip(problem.tasks, thetas)]
    cs = [jnp.where(flat, lax.stop_gradient(c), c) for c in cs]
    finite = finite & jnp.isfinite(loop.residual)
    residual = jnp.where(finite, loop.residual * unit, jnp.nan)
    converged = finite & (loop.residual <= stop_at)
    return thetas, cs, loop.iteration, residual, converged


def project_cross_learning_path(task_params, global_params, eps_grid, **options
                                ) -> ProjectionResult:
    """:func:`project_cross_learning` at every ε of ``eps_grid`` (E,): the same
    :class:`ProjectionResult` with a leading ε axis on every field.

    The work that does not depend on ε (validation, the Gram matrix of ``"dual"``)
    is done once; the Newton solves run vmapped over the grid.  ``options`` are
    those of :func:`project_cross_learning`.  For w_g = 0 and many small problems
    where only a summary of θ is needed, :func:`map_cross_learning_path` is the
    memory-lean, warm-started variant.
    """
    eps_grid = checks.check_eps_grid(eps_grid)
    return jax.vmap(lambda e: project_cross_learning(task_params, global_params, e,
                                                     **options))(eps_grid)


def cross_learning_objective(task_params, global_params, points_task, points_global,
                             task_weights=None, global_weight=1.0):
    """Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖², the objective P_C minimises."""
    t = checks.task_count(task_params)
    if task_weights is None:
        task_weights = jnp.ones((t,))
    return (jnp.sum(task_weights * per_task_sq_norm(sub(task_params, points_task)))
            + global_weight * sq_norm(sub(global_params, points_global)))
