"""Every solver on every problem it applies to, and the one protocol (issue 11)."""

import functools
import importlib.util
import inspect
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# loaded by path, under its own name: other test folders may have a helpers.py too
_spec = importlib.util.spec_from_file_location(
    "solvers_test_helpers", pathlib.Path(__file__).with_name("helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
cases, problems, solvers = helpers.cases, helpers.problems, helpers.solvers

jax.config.update("jax_enable_x64", True)

CASES = cases()


@functools.lru_cache(maxsize=None)
def jitted_run(solver):
    """One jitted ``run`` per solver case: problems of one shape (the least-squares
    data at ε = 0.4, 0 and ∞) share its compiled program, ε being an argument."""
    instance = solver.make()
    return jax.jit(lambda task0, data, eps: instance.run(task0, data, eps, solver.num_steps))


@pytest.mark.parametrize("solver, problem", CASES,
                         ids=[f"{s.name}-{p.name}" for s, p in CASES])
def test_solver_reaches_the_known_answer(solver, problem):
    data = (jnp.asarray(problem.x), jnp.asarray(problem.y))
    t, d = problem.expected.shape
    state, info = jitted_run(solver)(jnp.zeros((t, d)), data, jnp.asarray(problem.eps))
    np.testing.assert_allclose(state.task_params, problem.expected, atol=max(solver.atol, problem.atol))
    assert info.loss.shape == (solver.num_steps, t)


def test_every_solver_has_a_problem_with_a_nontrivial_answer():
    for s in solvers():
        names = [p.name for p in problems() if s.applies(p)]
        assert len(names) >= 2, (s.name, names)


@pytest.mark.parametrize("solver", solvers(), ids=lambda s: s.name)
def test_protocol(solver):
    """init(task_params, eps, global_params=None) -> State; step(state, data, eps) ->
    (State, Info); run(task_params, data, eps, num_steps, global_params=None) ->
    (State, Info stacked over steps); state.task_params / global_params / iteration;
    info.loss of shape (T,)."""
    instance = solver.make()
    names = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert names(instance.init)[:3] == ["task_params", "eps", "global_params"]
    assert inspect.signature(instance.init).parameters["global_params"].default is None
    assert names(instance.step) == ["state", "data", "eps"]
    assert names(instance.run) == ["task_params", "data", "eps", "num_steps", "global_params"]

    problem = problems()[1]  # least squares, T = 4, d = 3
    data = (jnp.asarray(problem.x), jnp.asarray(problem.y))
    task0 = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    glob0 = jnp.zeros(3)
    state = instance.init(task0, 0.4, glob0)
    for field in ("task_params", "global_params", "iteration"):
        assert field in state._fields
    assert state.global_params.shape == (3,) and int(state.iteration) == 0
    step = jax.jit(instance.step)
    new, info = step(state, data, 0.4)
    assert type(new) is type(state)
    assert info.loss.shape == (4,)
    # the losses are L_t at the iterate the step starts from (or at the new feasible
    # iterate for ADMM), recomputed here
    at = new.task_params if solver.name == "admm" else state.task_params
    expected = np.mean((np.einsum("tnd,td->tn", problem.x, np.asarray(at)) - problem.y) ** 2, 1)
    np.testing.assert_allclose(info.loss, expected, rtol=1e-10)
    assert int(new.iteration) == 1
    final, history = jax.jit(lambda t, d, g: instance.run(t, d, 0.4, 3, g))(task0, data, glob0)
    assert int(final.iteration) == 3
    for a, b in zip(jax.tree_util.tree_leaves(history), jax.tree_util.tree_leaves(info)):
        assert a.shape == (3,) + b.shape
    # run = init + the same steps
    s = instance.init(task0, 0.4, glob0)
    for _ in range(3):
        s, last = step(s, data, 0.4)
    np.testing.assert_allclose(final.task_params, s.task_params, atol=1e-12)
    np.testing.assert_allclose(history.loss[-1], last.loss, atol=1e-12)
