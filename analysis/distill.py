"""Distillation: turn a (learned) drift into a closed-form formula.

1. Sample the drift D and its r-derivative (jax.grad) on a grid over (r, A)
   (and progress for temporal drifts); a separate set of random points in the
   same box is held out for scoring.
2. Fit parametric families by least squares on D and, weighted, on dD/dr:
   PPO clip (eps); DPO with free alpha, beta and (r-1) or log r on each
   advantage sign (4 variants); PPO's clip plus one or two correction terms
   inside its relu (the form of a PPO-initialised LPO drift); a one-sided drift
   (r - 1)_+ (c0 + c1 A + c2 A (r - 1)); a sparse
   polynomial in (r-1, log r, A) whose
   terms all vanish to second order at r = 1; a rational variant of it.
3. Run a symbolic regression (gplearn) over r-1, log r, A (and progress) with
   +, -, *, /, tanh, relu, abs, square, min, max and a parsimony penalty;
   the numeric constants of the best programs are then refined by least squares.
4. Rank all candidates by held-out error plus a complexity penalty, check each
   against the Mirror-Learning conditions, and export sympy text/LaTeX and a
   JSON loadable as `driftlab train --algo distilled --drift FILE`.

Every family is written once, as a sympy template with named constants; the
JAX function used for fitting is compiled from that same template
(`driftlab.algorithms.formula_drift`), so the exported formula is exactly what was fitted
(the `ppo+k` subsets are fitted through the template with all five terms, the others'
coefficients held at 0: the same function; the fitted constants agree with per-subset
fits to 1e-13 relative, with equal costs).

Longer than ~300 lines: sampling, the family fits and the symbolic search share
one sampled grid and one scoring; the symbolic search is the next to move out.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from scipy.optimize import least_squares

from driftlab.algorithms.formula_drift import _compile, make_formula_drift
from driftlab.algorithms.storage import atomic_write_text, write_json
from driftlab.analysis.conditions import ConditionReport, check_conditions
from driftlab.analysis.surfaces import AnalysisError, DriftSource, drift_and_grad

r, log_r, A, p = (sympy.Symbol(n, real=True) for n in ("r", "log_r", "A", "p"))


def relu(x: sympy.Expr) -> sympy.Expr:
    return sympy.Max(x, 0)


# ---- data --------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """Flat arrays (n,) of points and the drift's values and r-derivatives there."""

    r: np.ndarray
    A: np.ndarray
    p: np.ndarray
    D: np.ndarray
    dD: np.ndarray

    def subset(self, index: np.ndarray) -> Sample:
        return Sample(*(x[index] for x in (self.r, self.A, self.p, self.D, self.dD)))


def sample_drift(source: DriftSource, r_range: tuple[float, float] = (0.4, 1.8),
                 a_range: tuple[float, float] = (-4.0, 4.0), points: int = 61,
                 progress: tuple[float, ...] | None = None, heldout: int = 2000,
                 seed: int = 0) -> tuple[Sample, Sample]:
    """(train, held-out): a `points` x `points` grid over (r, A) (x progress),
    and `heldout` uniform random points in the same box."""
    if points < 2 or heldout < 1:
        raise AnalysisError(f"empty grid ({points} points per axis, {heldout} held-out points); "
                            "use --points >= 2 (e.g. 61)")
    if not (0 < r_range[0] < r_range[1]) or not (a_range[0] < a_range[1]):
        raise AnalysisError(f"empty grid: need 0 < r-min < r-max and a-min < a-max, got "
                            f"r in {r_range}, A in {a_range}; fix the ranges")
    if progress is None:
        progress = (0.0, 0.25, 0.5, 0.75, 1.0) if source.temporal else (0.0,)
    pg, ag, rg = np.meshgrid(np.asarray(progress, float), np.linspace(*a_range, points),
                             np.linspace(*r_range, points), indexing="ij")
    rng = np.random.default_rng(seed)
    rh = rng.uniform(*r_range, heldout)
    ah = rng.uniform(*a_range, heldout)
    ph = rng.choice(np.asarray(progress, float), heldout)
    out = []
    for rr, aa, pp in ((rg.ravel(), ag.ravel(), pg.ravel()), (rh, ah, ph)):
        value, grad = drift_and_grad(source.drift, source.params, rr, aa, pp)
        value, grad = np.asarray(value, np.float64), np.asarray(grad, np.float64)
        if not (np.all(np.isfinite(value)) and np.all(np.isfinite(grad))):
            raise AnalysisError(f"drift {source.label} is not finite on the distillation grid; "
                                "narrow it (e.g. --r-min 0.5)")
        out.append(Sample(rr, aa, pp, value, grad))
    return out[0], out[1]


# ---- candidates ---------------------------------------------------------------------

@dataclass
class Candidate:
    """A fitted closed form: sympy expression with named constants."""

    family: str
    expr: sympy.Expr
    constants: dict[str, float]
    r2: float = float("nan")  # held-out R^2 of D
    nrmse: float = float("nan")  # held-out RMSE / std(D)
    complexity: int = 0  # nodes in the expression tree (constants count 1)
    score: float = float("inf")
    conditions: ConditionReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # values' last result and the constants it was made from (a report asks for each
    # candidate's several times)
    _values: tuple[tuple, sympy.Expr] | None = field(default=None, repr=False, compare=False)

    @property
    def values(self) -> sympy.Expr:
        """The expression with the constants' values substituted."""
        key = (self.expr, tuple(sorted((k, round(v, 6)) for k, v in self.constants.items())))
        if self._values is None or self._values[0] != key:
            # xreplace, not subs: the same expression (each node is rebuilt, so numbers
            # still combine), without subs's search for matches (1.4 s on a polynomial)
            self._values = (key, self.expr.xreplace({sympy.Symbol(k, real=True): sympy.Float(v)
                                                     for k, v in key[1]}))
        return self._values[1]

    @property
    def text(self) -> str:
        return str(self.expr)

    def latex(self, numeric: bool = True) -> str:
        return sympy.latex(self.values if numeric else self.expr,
                           symbol_names={log_r: r"\log r"})

    def drift_source(self, label: str | None = None) -> DriftSource:
        drift = make_formula_drift(self.text, self.constants)
        return DriftSource(label or self.family, drift, drift.default_params)

    def summary(self) -> dict[str, Any]:
        return {"family": self.family, "expression": self.text, "constants": self.constants,
                "formula": str(self.values), "latex": self.latex(),
                "r2_heldout": self.r2, "nrmse_heldout": self.nrmse,
                "complexity": self.complexity, "score": self.score,
                "conditions_pass": None if self.conditions is None else self.conditions.passed,
                "violated": [] if self.conditions is None else self.conditions.violated,
                **self.extra}


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes in the expression tree."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


def _value_and_grad(expr: sympy.Expr, names: list[str]):
    """(theta, r, A, p) -> (D, dD/dr) at one point, from the sympy expression
    (`names`: the constants in theta's order; log r is computed from r)."""
    compiled = _compile(expr)

    def point(theta, rr, aa, pp):
        env = {"r": rr, "log_r": jnp.log(rr), "A": aa, "p": pp}
        env.update({name: theta[i] for i, name in enumerate(names)})
        return jnp.asarray(compiled(env), jnp.float32)

    return jax.value_and_grad(point, argnums=1)


def _evaluator(expr: sympy.Expr, names: list[str]):
    """Jitted (theta, r, A, p) -> (D, dD/dr) over flat arrays of points."""
    return jax.jit(jax.vmap(_value_and_grad(expr, names), in_axes=(None, 0, 0, 0)))


def _residual_fns(expr: sympy.Expr, names: list[str], data: Sample, grad_weight: float):
    evaluate = _evaluator(expr, names)
    scale_d = max(float(np.std(data.D)), 1e-8)
    scale_g = max(float(np.std(data.dD)), 1e-8)
    rr, aa, pp = (jnp.asarray(x, jnp.float32) for x in (data.r, data.A, data.p))
    target_d = jnp.asarray(data.D / scale_d, jnp.float32)
    target_g = jnp.asarray(data.dD / scale_g, jnp.float32)

    def residual(theta):
        value, grad = evaluate(theta, rr, aa, pp)
        parts = [value / scale_d - target_d]
        if grad_weight > 0:
            parts.append(grad_weight * (grad / scale_g - target_g))
        return jnp.concatenate(parts)

    # The residual and its Jacobian in one compiled program (compiling is most of a
    # fit's time); least_squares asks for the Jacobian where it last asked for the
    # residual, so the pair is kept for that point.
    both = jax.jit(lambda theta: (residual(theta), jax.jacfwd(residual)(theta)))
    last: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def pair(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.asarray(t, np.float32)
        key = theta.tobytes()
        if key not in last:
            value, jac = both(jnp.asarray(theta))
            last.clear()
            last[key] = (np.asarray(value, np.float64), np.asarray(jac, np.float64))
        return last[key]

    return (lambda t: pair(t)[0], lambda t: pair(t)[1])


def fit_template(family: str, expr: sympy.Expr, names: list[str], starts: list[list[float]],
                 data: Sample, bounds: tuple[list[float], list[float]] | None = None,
                 grad_weight: float = 0.3) -> Candidate:
    """Least squares over the constants `names` of `expr` from several starts."""
    residual, jacobian = _residual_fns(expr, names, data, grad_weight)
    return _candidate(family, expr, names, starts,
                      _least_squares(residual, jacobian, starts, bounds))


def _least_squares(residual, jacobian, starts: list[list[float]],
                   bounds: tuple[list[float], list[float]] | None):
    """scipy's least_squares from each start; the lowest-cost result, or None when
    no start gave a finite residual and Jacobian."""
    best = None
    for start in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = least_squares(residual, np.asarray(start, float), jac=jacobian,
                                       bounds=bounds if bounds else (-np.inf, np.inf),
                                       x_scale="jac", max_nfev=200)
        except ValueError:
            # The residual or its Jacobian is not finite there (a symbolic program's log
            # of a negative number, say): this start gives no fit.
            continue
        if best is None or result.cost < best.cost:
            best = result
    return best


def _candidate(family: str, expr: sympy.Expr, names: list[str], starts: list[list[float]],
               best) -> Candidate:
    # No start could be refined: keep the first one; scoring ranks a non-finite drift last.
    theta = starts[0] if best is None else best.x
    constants = {name: float(v) for name, v in zip(names, theta, strict=True)}
    candidate = Candidate(family, expr, constants)
    candidate.extra["fit_cost"] = math.inf if best is None else float(best.cost)
    return candidate


# ---- parametric families -------------------------------------------------------

def ppo_template() -> tuple[sympy.Expr, list[str]]:
    eps = sympy.Symbol("eps", real=True)
    clipped = sympy.Min(sympy.Max(r, 1 - eps), 1 + eps)
    return relu((r - clipped) * A), ["eps"]


def dpo_template(pos: str, neg: str) -> tuple[sympy.Expr, list[str]]:
    """DPO with (r-1) or log r as the A >= 0 ("pos") and A < 0 ("neg") variable."""
    alpha, beta = sympy.Symbol("alpha", real=True), sympy.Symbol("beta", real=True)
    var = {"r-1": r - 1, "log r": log_r}
    u, v = var[pos] * A, var[neg] * A
    expr = sympy.Piecewise((relu(u - alpha * sympy.tanh(u / alpha)), A >= 0),
                           (relu(v - beta * sympy.tanh(v / beta)), True))
    return expr, ["alpha", "beta"]


def polynomial_terms(degrees: tuple[int, ...] = (2, 3),
                     a_powers: tuple[int, ...] = (0, 1, 2)) -> list[sympy.Expr]:
    """Monomials (r-1)^i (log r)^k A^j with i + k in `degrees`: each vanishes at
    r = 1 with zero slope, so conditions 2 and 3 hold for any coefficients."""
    terms = []
    for degree in degrees:
        for i in range(degree + 1):
            for j in a_powers:
                terms.append((r - 1) ** i * log_r ** (degree - i) * A ** j)
    return terms


def _sparse_linear(data: Sample, terms: list[sympy.Expr], grad_weight: float,
                   threshold: float, ridge: float = 1e-4) -> tuple[list[sympy.Expr], np.ndarray]:
    """Sequentially thresholded ridge least squares of D (and dD/dr) on `terms`:
    (kept terms, their coefficients). Columns are standardised first because
    (r-1)^i and (log r)^k are nearly collinear near r = 1."""
    feats = _features(terms, data)  # (n, T, 2): value, d/dr
    scale_d = max(float(np.std(data.D)), 1e-8)
    scale_g = max(float(np.std(data.dD)), 1e-8)
    design = np.concatenate([feats[..., 0] / scale_d, grad_weight * feats[..., 1] / scale_g])
    target = np.concatenate([data.D / scale_d, grad_weight * data.dD / scale_g])
    norm = np.maximum(np.linalg.norm(design, axis=0), 1e-12)
    design = design / norm
    active = np.ones(len(terms), bool)
    coef = np.zeros(len(terms))
    for _ in range(10):
        sub = design[:, active]
        gram = sub.T @ sub + ridge * np.eye(sub.shape[1])
        coef = np.zeros(len(terms))
        coef[active] = np.linalg.solve(gram, sub.T @ target)
        # A term's contribution relative to D's scale decides whether it stays.
        contribution = np.abs(coef / norm) * feats[..., 0].std(0) / scale_d
        keep = active & (contribution > threshold)
        if keep.sum() == 0 or np.array_equal(keep, active):
            break
        active = keep
    coef = coef / norm
    return [t for t, a in zip(terms, active, strict=True) if a], coef[active]


def fit_polynomial(data: Sample, grad_weight: float = 0.3, threshold: float = 0.02,
                   terms: list[sympy.Expr] | None = None) -> Candidate:
    """relu(sparse polynomial): terms chosen by thresholded least squares, then
    the coefficients refitted under the relu (which keeps D >= 0)."""
    used, coef = _sparse_linear(data, terms or polynomial_terms(), grad_weight, threshold)
    names = [f"c{i}" for i in range(len(used))]
    symbols = [sympy.Symbol(n, real=True) for n in names]
    expr = relu(sum((s * t for s, t in zip(symbols, used, strict=True)), sympy.Integer(0)))
    return fit_template("polynomial", expr, names, [list(coef)], data, None, grad_weight)


def fit_rational(data: Sample, grad_weight: float = 0.3, threshold: float = 0.02) -> Candidate:
    """relu(sparse quadratic numerator) / (1 + d0 (r-1)^2 + d1 A^2) with d >= 0:
    saturates where a polynomial would keep growing."""
    used, coef = _sparse_linear(data, polynomial_terms((2,)), grad_weight, threshold)
    names = [f"c{i}" for i in range(len(used))]
    symbols = [sympy.Symbol(n, real=True) for n in names]
    d0, d1 = sympy.Symbol("d0", real=True), sympy.Symbol("d1", real=True)
    numerator = sum((s * t for s, t in zip(symbols, used, strict=True)), sympy.Integer(0))
    expr = relu(numerator) / (1 + d0 * (r - 1) ** 2 + d1 * A ** 2)
    x0 = list(coef)
    lower = [-np.inf] * len(x0) + [0.0, 0.0]
    upper = [np.inf] * (len(x0) + 2)
    return fit_template("rational", expr, names + ["d0", "d1"],
                        [x0 + [0.1, 0.1], x0 + [1.0, 0.01]], data, (lower, upper), grad_weight)


def ppo_corrected_terms() -> list[sympy.Expr]:
    """Corrections a PPO-initialised LPO net adds inside PPO's relu: its features
    are linear and quadratic in (r-1) and log r, alone and times A; to second
    order near r = 1 they reduce to these."""
    return [(r - 1) * A, (r - 1) ** 2, (r - 1) ** 2 * A, (r - 1) ** 2 * A ** 2, r - 1]


def _restricted(residual, jacobian, columns: list[int], width: int):
    """(residual, jacobian) of a fit over `width` constants, as functions of the
    constants at `columns` only; the others are held at 0."""
    def full(theta: np.ndarray) -> np.ndarray:
        out = np.zeros(width)
        out[columns] = theta
        return out

    return (lambda theta: residual(full(theta)), lambda theta: jacobian(full(theta))[:, columns])


def fit_ppo_corrected(data: Sample, grad_weight: float = 0.3, max_terms: int = 2,
                      terms: list[sympy.Expr] | None = None) -> list[Candidate]:
    """relu(D_ppo(eps) + sum_k c_k t_k - 1e-4): PPO's clip with at most `max_terms`
    corrections, the form of a PPO-initialised LPO drift (dpo/brax_drift.py,
    lpo_bb.py: the net inside PPO's relu, the same 1e-4 shift). Every subset of
    `terms` of each size is fitted; the best of each size is returned."""
    from itertools import combinations

    pool = terms or ppo_corrected_terms()
    eps = sympy.Symbol("eps", real=True)
    clipped = sympy.Min(sympy.Max(r, 1 - eps), 1 + eps)
    ppo = relu((r - clipped) * A)
    # Every subset is fitted through one compiled program over all of `pool`, the
    # coefficients outside the subset held at 0 (each term is finite on the grid, so
    # they add exactly nothing): one compile instead of one per subset (15).
    every = [f"k{k}" for k in range(len(pool))]
    whole = relu(ppo + sum((sympy.Symbol(n, real=True) * t for n, t in zip(every, pool, strict=True)),
                           sympy.Integer(0)) - sympy.Rational(1, 10000))
    residual_all, jacobian_all = _residual_fns(whole, ["eps"] + every, data, grad_weight)
    best: dict[int, tuple[float, Candidate]] = {}
    for size in range(1, max_terms + 1):
        for subset in combinations(range(len(pool)), size):
            residual, jacobian = _restricted(residual_all, jacobian_all,
                                             [0] + [1 + k for k in subset], 1 + len(pool))
            names = ["eps"] + [f"c{i}" for i in range(size)]
            coefs = [sympy.Symbol(n, real=True) for n in names[1:]]
            correction = sum((c * pool[k] for c, k in zip(coefs, subset, strict=True)),
                             sympy.Integer(0))
            expr = relu(ppo + correction - sympy.Rational(1, 10000))
            starts = [[0.2] + [0.0] * size, [0.1] + [0.1] * size, [0.3] + [-0.1] * size]
            fit = _least_squares(residual, jacobian, starts,
                                 ([1e-3] + [-np.inf] * size, [2.0] + [np.inf] * size))
            cand = _candidate(f"ppo+{size} term{'s' if size > 1 else ''}", expr, names,
                              starts, fit)
            cost = cand.extra["fit_cost"]
            if not math.isfinite(cost):
                continue
            if size not in best or cost < best[size][0]:
                best[size] = (cost, cand)
    return [cand for _, cand in sorted(best.values(), key=lambda x: x[0])]


def one_sided_template() -> tuple[sympy.Expr, list[str]]:
    """relu((r-1)_+ (c0 + c1 A + c2 A (r-1)) - 1e-4): a drift only on raising an
    action's probability (r > 1), linear in r - 1 with an advantage-dependent
    slope plus a quadratic term; zero for r <= 1 (no penalty on lowering one).
    The shape PPO-initialised LPO drifts took on CartPole (drifts/lpo-cartpole);
    like LPO's, it is exactly zero within the 1e-4 dead zone around r = 1."""
    c0, c1, c2 = (sympy.Symbol(n, real=True) for n in ("c0", "c1", "c2"))
    expr = relu(relu(r - 1) * (c0 + c1 * A + c2 * A * (r - 1)) - sympy.Rational(1, 10000))
    return expr, ["c0", "c1", "c2"]


def _features(terms: list[sympy.Expr], data: Sample) -> np.ndarray:
    """(n, T, 2): each term's value and d/dr at the data's points, all terms in one
    compiled program (one compile, not one per term: 30 compiles took 4.5 s)."""
    pieces = [_value_and_grad(term, []) for term in terms]
    none = jnp.zeros((0,))

    def at(rr, aa, pp):
        pairs = [piece(none, rr, aa, pp) for piece in pieces]
        return jnp.stack([v for v, _ in pairs]), jnp.stack([g for _, g in pairs])

    value, grad = jax.jit(jax.vmap(at))(*(jnp.asarray(x, jnp.float32)
                                          for x in (data.r, data.A, data.p)))
    return np.stack([np.asarray(value, np.float64), np.asarray(grad, np.float64)], -1)


def fit_families(data: Sample, grad_weight: float = 0.3) -> list[Candidate]:
    """All parametric families fitted to `data`."""
    candidates = []
    expr, names = ppo_template()
    candidates.append(fit_template("ppo-clip", expr, names, [[0.1], [0.2], [0.35], [0.6]],
                                   data, ([1e-3], [2.0]), grad_weight))
    for pos, neg in product(("r-1", "log r"), repeat=2):
        expr, names = dpo_template(pos, neg)
        candidates.append(fit_template(
            f"dpo[A>=0: {pos}, A<0: {neg}]", expr, names,
            [[2.0, 0.6], [0.5, 0.5], [5.0, 2.0], [1.0, 0.2]], data, ([1e-2, 1e-2], [50, 50]),
            grad_weight))
    candidates.extend(fit_ppo_corrected(data, grad_weight))
    expr, names = one_sided_template()
    candidates.append(fit_template("one-sided", expr, names,
                                   [[0.5, 0.1, 1.0], [0.1, 0.5, 0.5], [1.0, 0.0, 0.0]],
                                   data, None, grad_weight))
    candidates.append(fit_polynomial(data, grad_weight))
    candidates.append(fit_rational(data, grad_weight))
    return candidates


# ---- symbolic regression (gplearn) ------------------------------------------------

def _tanh(x):
    return np.tanh(x)


def _relu(x):
    return np.maximum(x, 0.0)


def _square(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip(np.square(x), 0, 1e100)


_SYMPY_OF = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "tanh": sympy.tanh, "relu": relu, "abs": sympy.Abs,
    "square": lambda a: a ** 2, "min": sympy.Min, "max": sympy.Max, "neg": lambda a: -a,
}


def program_to_sympy(program: str, variables: list[sympy.Expr]) -> sympy.Expr:
    """A gplearn program string (`add(X0, mul(X2, 0.5))`) as a sympy expression."""
    from sympy.parsing.sympy_parser import parse_expr

    local = dict(_SYMPY_OF)
    local.update({f"X{i}": v for i, v in enumerate(variables)})
    return sympy.sympify(parse_expr(program, local_dict=local, evaluate=True))


def symbolic_regression(data: Sample, temporal: bool = False, population: int = 1000,
                        generations: int = 20, parsimony: float = 0.002, seed: int = 0,
                        max_points: int = 1000, top: int = 3,
                        grad_weight: float = 0.3) -> list[Candidate]:
    """gplearn over [r-1, log r, A (, p)] with a parsimony penalty; the top
    distinct programs of the last generation, constants refined by least squares."""
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor

    functions = ("add", "sub", "mul", "div", "abs", "min", "max",
                 make_function(function=_tanh, name="tanh", arity=1, wrap=False),
                 make_function(function=_relu, name="relu", arity=1, wrap=False),
                 make_function(function=_square, name="square", arity=1, wrap=False))
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(data.D))[:max_points]
    columns = [data.r - 1.0, np.log(data.r), data.A] + ([data.p] if temporal else [])
    x = np.stack(columns, -1)[index]
    scale = max(float(np.std(data.D)), 1e-8)  # fit D / std(D): parsimony is scale-free
    y = data.D[index] / scale
    model = SymbolicRegressor(
        population_size=population, generations=generations, function_set=functions,
        parsimony_coefficient=parsimony, const_range=(-2.0, 2.0), init_depth=(2, 5),
        p_crossover=0.7, p_subtree_mutation=0.1, p_hoist_mutation=0.05,
        p_point_mutation=0.1, max_samples=1.0, metric="mse", random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    variables = [r - 1, log_r, A] + ([p] if temporal else [])
    programs = sorted(model._programs[-1], key=lambda prog: prog.raw_fitness_)
    seen: set[str] = set()
    candidates = []
    for program in [model._program] + programs:
        try:
            expr = scale * program_to_sympy(str(program), variables)
        except Exception:  # an odd program that sympy cannot build: skip it
            continue
        if str(expr) in seen or not expr.free_symbols & {r, log_r, A}:
            continue  # a duplicate, or a constant (no drift)
        seen.add(str(expr))
        candidates.append(refine_constants(expr, data, grad_weight))
        if len(candidates) >= top:
            break
    return candidates


def refine_constants(expr: sympy.Expr, data: Sample, grad_weight: float = 0.3) -> Candidate:
    """Replace the floats of `expr` by named constants k0, k1, ... and refit them."""
    floats = sorted({a for a in expr.atoms(sympy.Float)}, key=lambda f: float(f))
    names = [f"k{i}" for i in range(len(floats))]
    templ = expr.xreplace({f: sympy.Symbol(n, real=True) for f, n in zip(floats, names,
                                                                          strict=True)})
    start = [float(f) for f in floats]
    if not names:
        return Candidate("symbolic", templ, {})
    fitted = fit_template("symbolic", templ, names, [start], data, None, grad_weight)
    return fitted


# ---- scoring, ranking --------------------------------------------------------------

def score_candidate(candidate: Candidate, heldout: Sample, complexity_weight: float = 0.002,
                    check: bool = True) -> Candidate:
    """Held-out R^2 and NRMSE of D, complexity, score, conditions."""
    names = list(candidate.constants)
    evaluate = _evaluator(candidate.expr, names)
    theta = jnp.asarray([candidate.constants[n] for n in names], jnp.float32)
    value, _ = evaluate(theta, *(jnp.asarray(x, jnp.float32)
                                 for x in (heldout.r, heldout.A, heldout.p)))
    value = np.asarray(value, np.float64)
    var = float(np.var(heldout.D))
    mse = float(np.mean((value - heldout.D) ** 2)) if np.all(np.isfinite(value)) else math.inf
    candidate.r2 = 1.0 - mse / var if var > 0 else (1.0 if mse < 1e-12 else -math.inf)
    candidate.nrmse = math.sqrt(mse / var) if var > 0 else math.sqrt(mse)
    candidate.complexity = complexity(candidate.expr)
    candidate.score = candidate.nrmse + complexity_weight * candidate.complexity
    if check:
        try:
            candidate.conditions = check_conditions(candidate.drift_source(), points=101)
        except Exception as err:  # a formula that cannot even be evaluated: never the best
            candidate.extra["check_error"] = str(err)
            candidate.score = math.inf
    return candidate


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Lowest score first; candidates violating a condition after all that pass."""
    def key(c: Candidate):
        passed = c.conditions is None or c.conditions.passed
        return (not passed, c.score if math.isfinite(c.score) else math.inf)

    return sorted(candidates, key=key)


@dataclass
class Distillation:
    source: str
    candidates: list[Candidate]  # ranked, best first
    seconds: float
    settings: dict[str, Any]

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    def table(self) -> str:
        lines = [f"{'rank':>4}  {'family':<28} {'R2':>8} {'NRMSE':>8} {'cx':>4} {'score':>7}  "
                 "conditions  formula"]
        for i, c in enumerate(self.candidates, 1):
            ok = "-" if c.conditions is None else ("pass" if c.conditions.passed else
                                                   "FAIL:" + ",".join(c.conditions.violated))
            formula = str(c.values)
            formula = formula if len(formula) <= 90 else formula[:87] + "..."
            lines.append(f"{i:>4}  {c.family:<28} {c.r2:>8.4f} {c.nrmse:>8.4f} "
                         f"{c.complexity:>4} {c.score:>7.3f}  {ok:<10}  {formula}")
        return "\n".join(lines)


def distill(source: DriftSource, *, symbolic: bool = True, families: bool = True,
            population: int = 1000, generations: int = 20, parsimony: float = 0.002,
            seed: int = 0, points: int = 61, r_range: tuple[float, float] = (0.4, 1.8),
            a_range: tuple[float, float] = (-4.0, 4.0), grad_weight: float = 0.3,
            complexity_weight: float = 0.002, check: bool = True) -> Distillation:
    """Fit families and/or a symbolic regression to `source`; ranked candidates."""
    if not (symbolic or families):
        raise AnalysisError("nothing to fit: enable the families or the symbolic search")
    start = time.time()
    train, heldout = sample_drift(source, r_range, a_range, points, seed=seed)
    if float(np.max(np.abs(train.D))) == 0.0:
        raise AnalysisError(f"drift {source.label} is zero everywhere on the grid (e.g. LPO at "
                            "its all-zero initialisation); there is nothing to distill")
    candidates: list[Candidate] = []
    if families:
        candidates += fit_families(train, grad_weight)
    if symbolic:
        candidates += symbolic_regression(train, source.temporal, population, generations,
                                          parsimony, seed, grad_weight=grad_weight)
    candidates = [score_candidate(c, heldout, complexity_weight, check) for c in candidates]
    settings = {"points": points, "r_range": list(r_range), "a_range": list(a_range),
                "grad_weight": grad_weight, "complexity_weight": complexity_weight,
                "symbolic": symbolic, "population": population, "generations": generations,
                "parsimony": parsimony, "seed": seed}
    return Distillation(source.label, rank(candidates), time.time() - start, settings)


# ---- output -------------------------------------------------------------------------

def candidate_json(candidate: Candidate, source: str, rank_: int) -> dict[str, Any]:
    """A drift file for `driftlab train --algo distilled --drift FILE`."""
    drift = make_formula_drift(candidate.text, candidate.constants)
    return {"kind": "distilled", "expression": candidate.text,
            "constants": candidate.constants,
            "params": {k: float(v) for k, v in drift.default_params.items()},
            "family": candidate.family, "latex": candidate.latex(),
            "fit": {"rank": rank_, "r2_heldout": candidate.r2, "nrmse_heldout": candidate.nrmse,
                    "complexity": candidate.complexity, "score": candidate.score,
                    "conditions_pass": (None if candidate.conditions is None
                                        else candidate.conditions.passed),
                    "violated": ([] if candidate.conditions is None
                                 else candidate.conditions.violated)},
            "source": source}


def write_distillation(result: Distillation, out: str | Path, top: int = 3) -> Path:
    """drift.json (the best candidate), candidate_<k>.json for the top `top`,
    candidates.json (all, ranked) and formulas.md (text + LaTeX)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    write_json(out / "drift.json", candidate_json(result.best, result.source, 1))
    for k, candidate in enumerate(result.candidates[:top], 1):
        write_json(out / f"candidate_{k}.json", candidate_json(candidate, result.source, k))
    write_json(out / "candidates.json", {"source": result.source, "seconds": result.seconds,
                                         "settings": result.settings,
                                         "candidates": [c.summary() for c in result.candidates]})
    lines = [f"# Distillation of {result.source}", "",
             "Ranked by held-out NRMSE + complexity penalty; candidates violating a "
             "Mirror-Learning condition come last.", "", "```", result.table(), "```", ""]
    for k, c in enumerate(result.candidates[:top], 1):
        lines += [f"## {k}. {c.family} (R^2 {c.r2:.4f}, complexity {c.complexity})", "",
                  f"Text: `{c.values}`", "", f"Template: `{c.text}` with "
                  + ", ".join(f"{n} = {v:.6g}" for n, v in c.constants.items()), "",
                  "$$" + c.latex() + "$$", ""]
    atomic_write_text(out / "formulas.md", "\n".join(lines))
    return out / "drift.json"
