"""Closed-form ("distilled") drifts: a sympy expression turned into a JAX drift.

A distilled drift file (written by `driftlab distill`) looks like

    {"kind": "distilled",
     "expression": "Piecewise((Max(0, A*(r - 1) - alpha*tanh(A*(r - 1)/alpha)), A >= 0), ...)",
     "constants": {"alpha": 2.0, "beta": 0.6},
     "params": {"alpha": 2.0, "beta": 0.6}}

Variables of the expression: `r` (ratio), `log_r` (log ratio), `A` (advantage),
`p` (training progress in [0, 1]). Every other symbol is a named constant: its
default value comes from `constants` and it is a pytree leaf of the drift's
parameters (so constants can be vmapped/swept like DPO's alpha). The expression
is compiled by walking the sympy tree into `jax.numpy` calls, which keeps
Max/Min/Piecewise elementwise and broadcastable (sympy's own printers turn
`Max(0, x)` into an `amax` over a stacked array, which fails for mixed shapes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from driftlab.algorithms.drifts import Drift, register_drift

if TYPE_CHECKING:
    import sympy

# sympy is imported where a formula is parsed or compiled, not with driftlab: it costs
# ~0.9 s, and `train --algo ppo` never needs it.
VARIABLES = ("r", "log_r", "A", "p")


class FormulaError(ValueError):
    """An expression that cannot become a distilled drift; the message says why."""


def parse_expression(text: str, constants: dict[str, float] | None = None) -> sympy.Expr:
    """Parse `text` with r, log_r, A, p and the names of `constants` as plain symbols
    (so `beta`, `E` or `S` do not become sympy's special functions/numbers)."""
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    names = set(VARIABLES) | set(constants or {})
    local = {name: sympy.Symbol(name, real=True) for name in names}
    local.update({"relu": lambda x: sympy.Max(x, 0), "square": lambda x: x ** 2})
    try:
        expr = parse_expr(text, local_dict=local)
    except Exception as err:  # sympy raises SyntaxError, TokenError, TypeError, ...
        raise FormulaError(f"cannot parse expression {text!r} ({type(err).__name__}: {err}); "
                           "write it in sympy syntax over r, log_r, A, p") from None
    if not isinstance(expr, sympy.Basic):
        raise FormulaError(f"expression {text!r} is not a formula")
    return sympy.sympify(expr)


def _compile(expr: sympy.Basic) -> Callable[[dict[str, jax.Array]], jax.Array]:
    """A function env -> value evaluating `expr` with jax.numpy, elementwise."""
    import sympy

    if isinstance(expr, sympy.Symbol):
        name = expr.name
        return lambda env: env[name]
    if expr is sympy.true:
        return lambda env: jnp.asarray(True)
    if expr is sympy.false:
        return lambda env: jnp.asarray(False)
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        value = float(expr)
        return lambda env: jnp.float32(value)
    if isinstance(expr, sympy.Piecewise):
        pieces = [(_compile(e), _compile(c)) for e, c in expr.args]
        def piecewise(env):
            out = pieces[-1][0](env)
            for value, cond in reversed(pieces[:-1]):
                out = jnp.where(cond(env), value(env), out)
            return out
        return piecewise
    args = [_compile(a) for a in expr.args]
    if isinstance(expr, sympy.Add):
        return lambda env: sum((f(env) for f in args[1:]), args[0](env))
    if isinstance(expr, sympy.Mul):
        def mul(env):
            out = args[0](env)
            for f in args[1:]:
                out = out * f(env)
            return out
        return mul
    if isinstance(expr, sympy.Pow):
        base, exponent = args
        if expr.exp.is_Integer and int(expr.exp) == 2:
            return lambda env: jnp.square(base(env))
        if expr.exp.is_Integer and int(expr.exp) == -1:
            return lambda env: 1.0 / base(env)
        return lambda env: jnp.power(base(env), exponent(env))
    if isinstance(expr, (sympy.Max, sympy.Min)):
        op = jnp.maximum if isinstance(expr, sympy.Max) else jnp.minimum
        def extremum(env):
            out = args[0](env)
            for f in args[1:]:
                out = op(out, f(env))
            return out
        return extremum
    relations = {sympy.GreaterThan: jnp.greater_equal, sympy.StrictGreaterThan: jnp.greater,
                 sympy.LessThan: jnp.less_equal, sympy.StrictLessThan: jnp.less}
    for kind, op in relations.items():
        if isinstance(expr, kind):
            return lambda env, op=op: op(args[0](env), args[1](env))
    unary = {sympy.tanh: jnp.tanh, sympy.Abs: jnp.abs, sympy.log: jnp.log, sympy.exp: jnp.exp,
             sympy.sign: jnp.sign, sympy.sin: jnp.sin, sympy.cos: jnp.cos,
             sympy.Heaviside: lambda x: jnp.where(x >= 0, 1.0, 0.0)}
    for kind, op in unary.items():
        if isinstance(expr, kind):
            arg = args[0]
            return lambda env, op=op: op(arg(env))
    raise FormulaError(f"{type(expr).__name__} in {expr} is not supported in a distilled drift; "
                       "use +, -, *, /, powers, tanh, Abs, log, exp, Max, Min, Piecewise")


def formula_drift_fn(expr: sympy.Expr, constants: list[str]):
    """The drift function `fn(params, ratio, log_ratio, advantage, progress)` of `expr`."""
    compiled = _compile(expr)

    def fn(params: dict, ratio, log_ratio, advantage, progress):
        env = {"r": ratio, "log_r": log_ratio, "A": advantage, "p": progress}
        env.update({name: params[name] for name in constants})
        return jnp.broadcast_to(compiled(env), jnp.shape(ratio)).astype(jnp.result_type(ratio))

    return fn


def make_formula_drift(expression: str, constants: dict[str, float] | None = None,
                       **info: Any) -> Drift:
    """The `distilled` drift family: `expression` over r, log_r, A, p with named
    `constants` (their values are the default parameters). Other options
    (`latex`, `fit`, `family`, ...) are descriptive and kept in the spec."""
    constants = {str(k): float(v) for k, v in (constants or {}).items()}
    if not isinstance(expression, str) or not expression.strip():
        raise FormulaError("a distilled drift needs a non-empty 'expression' string")
    expr = parse_expression(expression, constants)
    free = sorted(s.name for s in expr.free_symbols if s.name not in VARIABLES)
    missing = [name for name in free if name not in constants]
    if missing:
        raise FormulaError(f"expression uses {', '.join(missing)} without a value; add "
                           f"\"constants\": {{{', '.join(repr(m) + ': ...' for m in missing)}}} "
                           "or write the numbers into the expression")
    used = [name for name in constants if name in free]
    fn = formula_drift_fn(expr, used)
    spec = {"kind": "distilled", "expression": expression, "constants": constants, **info}
    params = {name: jnp.float32(constants[name]) for name in used}
    return Drift("distilled", fn, params, spec)


register_drift("distilled", make_formula_drift)
