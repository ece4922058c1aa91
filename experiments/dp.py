"""Bring your own MDP: optimal return distributions by stock-augmented distributional DP.

  python -m experiments.dp --mdp=FILE.npz --objective=cvar --alpha=0.1 --workdir=DIR

See experiments/configs/dp.py for the file format, objectives and outputs. Finite horizon:
`jaxrl.dp.solve_exact` (exact over history-dependent policies, float64); horizon 0:
`jaxrl.dp.grid.grid_value_iteration` (categorical on a stock grid). The risk-neutral policy
(objective 'mean') is solved too and its law of G plotted against the optimal one.

Bad input is refused with one line `error: ...` and exit status 2 before anything is written
(`experiments.common.guarded_main`): a file that is not an npz archive of numeric arrays
(`load_npz_file`, pickles never read), a malformed MDP, non-finite objective parameters, a
problem whose exact solver tables would not fit in memory (`check_exact_size`: the horizon
before anything is enumerated, then the number of achievable returns as it is enumerated,
against `MEMORY_FRACTION` of the available RAM), and a non-finite objective value. The exponential
utility is solved with a log-sum-exp greedy score (the same ranking as E[u], free of the
0 * inf NaNs of `exp` overflow) and its value E[u(G)] computed from log E[exp(-beta G)].
"""

from __future__ import annotations

import json
import math
import os
import time
import zipfile
import zlib
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags
from ml_collections import config_flags

from experiments import common
from jaxrl import dp
from jaxrl.dp import grid
from jaxrl.dp.objectives import Score
from jaxrl.dp.tabular import TOL
from jaxrl.envs import gamble as gamble_envs
from jaxrl.envs.finite_mdp import random_mdp

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/dp.py", allow_override=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory", allow_override=True)
_MDP = flags.DEFINE_string(
    "mdp", None, "npz file with P, R, mu0, gamma, horizon", allow_override=True
)
_OBJECTIVE = flags.DEFINE_string(
    "objective", None, "mean|cvar|var|threshold|target|utility", allow_override=True
)
_ALPHA = flags.DEFINE_float("alpha", None, "CVaR / VaR level in (0, 1]", allow_override=True)
_SOLVER = flags.DEFINE_string(
    "solver", None, "finite horizon: exact (distributional) | scalar (scalar stock-augmented DP)",
    allow_override=True)
_THRESHOLD = flags.DEFINE_float("threshold", None, "threshold T of P(G >= T)", allow_override=True)
_TARGET = flags.DEFINE_float("target", None, "target of -E|G - target|", allow_override=True)
_UTILITY = flags.DEFINE_string("utility", None, "utility name (exp)", allow_override=True)
_RISK = flags.DEFINE_float(
    "risk", None, "risk parameter beta of the exp utility", allow_override=True
)

REQUIRED = ("P", "R", "mu0", "gamma", "horizon")
OPTIONAL = ("terminal",)  # [S] bool: absorbing, zero reward after entering (validate_mdp)


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an empty one: the second)
_NPY_MAGIC = b"\x93NUMPY"


def load_npz_file(path: str, flag: str, required: tuple[str, ...],
                  optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays `required` (and those of `optional` that are present) of the npz archive
    `path`, read eagerly (the file is closed).

    Every problem is a one-line ValueError that starts with `{flag} {path}`: a missing file, a
    directory, an empty file, a single `.npy` array or any other non-zip file, a corrupt or
    truncated archive, a missing array, an array of Python objects (never unpickled:
    `allow_pickle=False`) or one that is not numeric (bool, integer or float).
    """
    where = f"{flag} {path}"
    if not path:
        raise ValueError(f"{flag} is empty; give an .npz file")
    if not os.path.exists(path):
        raise ValueError(f"{where} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{where} is a directory, not an npz archive")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise ValueError(f"{where} cannot be read ({e.strerror or e})") from e
    if not head:
        raise ValueError(f"{where} is an empty file, not an npz archive")
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"{where} is not an npz archive but a single .npy array; save the "
                         f"arrays {', '.join(required)} with np.savez")
    if head[:4] not in _ZIP_MAGIC:
        raise ValueError(f"{where} is not an npz archive (no zip header); save the arrays "
                         f"{', '.join(required)} with np.savez")
    unreadable = (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, KeyError)
    try:
        data = np.load(path, allow_pickle=False)
    except unreadable as e:
        raise ValueError(f"{where} is not a readable npz archive ({type(e).__name__}: "
                         f"{_first_line(e)})") from e
    with data:
        missing = [k for k in required if k not in data.files]
        if missing:
            raise ValueError(f"{where} lacks array(s) {missing}; need {list(required)}, "
                             f"found {data.files}")
        out = {}
        for k in tuple(required) + tuple(k for k in optional if k in data.files):
            try:
                a = data[k]
            except unreadable as e:
                if "pickle" in str(e):
                    raise ValueError(f"{where}: array {k!r} holds Python objects, which are not "
                                     "read (allow_pickle=False); store numeric arrays") from e
                raise ValueError(f"{where}: array {k!r} cannot be read ({type(e).__name__}: "
                                 f"{_first_line(e)})") from e
            if a.dtype.kind not in "biuf":
                raise ValueError(f"{where}: array {k!r} must be numeric, got dtype {a.dtype}")
            out[k] = a
    return out


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0]


def load_npz(path: str) -> dp.MDP:
    """Loads and validates an MDP file; ValueError names the file, the array and the problem."""
    arrays = load_npz_file(path, "--mdp", REQUIRED, OPTIONAL)
    where = f"--mdp {path}"
    for k in ("gamma", "horizon"):
        if arrays[k].size != 1:
            raise ValueError(f"{where}: {k} must be a scalar, got shape {arrays[k].shape}")
        arrays[k] = arrays[k].reshape(())
    if np.asarray(arrays["R"]).ndim != 3:
        raise ValueError(
            f"{where}: R must have shape [S, A, S'] (deterministic rewards), got "
            f"{np.asarray(arrays['R']).shape}"
        )
    try:
        return dp.validate_mdp(
            arrays["P"], arrays["R"], arrays["mu0"], float(arrays["gamma"]), arrays["horizon"],
            arrays.get("terminal"),
        )
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e


# ------------------------------------------------------------------------------------------------
# Memory of the exact solver
# ------------------------------------------------------------------------------------------------
# the estimates and the limit live in the library (every solver checks them itself)
from jaxrl.dp.memory import (  # noqa: E402
    _MIN_ATOMS,
    MEMORY_FRACTION,
    available_memory_bytes,
    exact_memory_bytes,
    memory_limit_bytes,
)

__all__ = ["MEMORY_FRACTION", "available_memory_bytes", "exact_memory_bytes",
           "memory_limit_bytes", "load_npz_file", "run"]


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def _unique(x: np.ndarray) -> np.ndarray:  # as jaxrl.dp.tabular: atoms closer than TOL merge
    x = np.sort(x.ravel())
    return x[np.concatenate([[True], np.diff(x) > TOL])] if x.size else x


def check_exact_size(mdp: dp.MDP, limit: int | None = None) -> int:
    """Refuses (ValueError naming the size and the limit) a finite-horizon problem whose exact
    solver would not fit in `limit` bytes (default `memory_limit_bytes()`), before the solver
    allocates anything: first the horizon alone (at the smallest padded stock axis), then the
    number of achievable stock values, counted time step by time step as `exact_stocks` would
    enumerate them, stopping at the first step past the limit. Returns the largest count."""
    limit = memory_limit_bytes() if limit is None else int(limit)
    S, A = mdp.P.shape[:2]
    H = mdp.horizon
    lower = exact_memory_bytes(S, A, H, 1)
    if lower > limit:
        raise ValueError(
            f"horizon {H} needs ~{_gib(lower)} for the exact solver (>= {_MIN_ATOMS} stock "
            f"values x {S} states x {A} actions x {S} next states x {H} steps); the limit is "
            f"{_gib(limit)} ({MEMORY_FRACTION:g} of the available RAM); use a shorter horizon")
    succ = [[(mdp.R[s, a, mdp.P[s, a] > 0], np.nonzero(mdp.P[s, a] > 0)[0]) for a in range(A)]
            for s in range(S)]
    per_state = [np.zeros(1) if mdp.mu0[s] > 0 else np.zeros(0) for s in range(S)]
    largest = 1
    for t in range(H):
        new: list[list[np.ndarray]] = [[] for _ in range(S)]
        for s in range(S):
            if per_state[s].size:
                for r, nxt in succ[s]:
                    for ri, sp in zip(r, nxt, strict=True):
                        new[sp].append(per_state[s] + mdp.gamma**t * ri)
        per_state = [_unique(np.concatenate(v)) if v else np.zeros(0) for v in new]
        n = _unique(np.concatenate(per_state)).size
        largest = max(largest, n)
        need = exact_memory_bytes(S, A, H, largest)
        if need > limit:
            raise ValueError(
                f"the exact solver needs ~{_gib(need)} for {n} distinct achievable returns / "
                f"stock values at t={t + 1} (S={S}, A={A}, horizon {H}); the limit is "
                f"{_gib(limit)} ({MEMORY_FRACTION:g} of the available RAM); use fewer distinct "
                "rewards or a shorter horizon")
    return largest


def stock_necessity_mdp() -> dp.MDP:
    """The digest's example: P(G >= 1) is 0.75 with the stock, 0.5 for any Markov policy
    (`jaxrl.envs.gamble.stock_necessity_mdp`)."""
    m = gamble_envs.stock_necessity_mdp()
    return dp.validate_mdp(m["P"], m["R"], m["mu0"], m["gamma"], m["horizon"])


def _finite(c: ml_collections.ConfigDict, name: str) -> float:
    try:
        v = float(c[name])
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.{name} (--{name}) must be a number, got {c[name]!r}") from e
    if not math.isfinite(v):
        raise ValueError(f"config.{name} (--{name}) must be a finite number, got {v}")
    return v


def validate_config(c: ml_collections.ConfigDict) -> None:
    """One-line ValueErrors naming the config field (before any file is read or written)."""
    if c.objective not in ("mean", "cvar", "var", "threshold", "target", "utility"):
        dp.make_objective(c.objective)  # raises: unknown or refused, with the reason
    if c.get("solver", "exact") not in ("exact", "scalar"):
        raise ValueError(f"config.solver (--solver) must be 'exact' or 'scalar', got {c.solver!r}")
    if c.objective == "var" and int(c.horizon) == 0 and not c.mdp:
        raise ValueError("--objective=var needs a finite horizon (config.horizon >= 1)")
    if c.objective in ("cvar", "var"):
        alpha = _finite(c, "alpha") if c.alpha is not None else float("nan")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"config.alpha (--alpha) must be in (0, 1], got {c.alpha}")
    for name in ("threshold", "target", "risk"):
        if c.get(name) is not None:
            _finite(c, name)
    if c.builtin not in ("random", "stock_necessity"):
        raise ValueError(f"config.builtin must be 'random' or 'stock_necessity', got {c.builtin!r}")
    for name in ("num_states", "num_actions", "num_stocks", "num_atoms", "max_sweeps"):
        if int(c[name]) < (2 if name in ("num_stocks", "num_atoms") else 1):
            raise ValueError(f"config.{name} must be >= 1 (>= 2 for grids), got {c[name]}")
    if int(c.horizon) < 0:
        raise ValueError(f"config.horizon must be >= 0, got {c.horizon}")
    if not 0.0 < float(c.gamma) <= 1.0:
        raise ValueError(f"config.gamma must be in (0, 1], got {c.gamma}")


def make_mdp(c: ml_collections.ConfigDict) -> dp.MDP:
    if c.mdp:
        return load_npz(c.mdp)
    if c.builtin == "stock_necessity":
        return stock_necessity_mdp()
    _, params = random_mdp(
        jax.random.PRNGKey(int(c.seed)),
        int(c.num_states),
        int(c.num_actions),
        gamma=float(c.gamma),
        horizon=int(c.horizon),
        reward_values=[-3.0, -1.0, 0.0, 1.0, 2.0],
        branching=2,
    )
    return dp.mdp_from_params(params)


def make_objective(c: ml_collections.ConfigDict) -> dp.Objective:
    """The configured objective; the exponential utility gets the log-sum-exp score
    (`exp_utility_score`) in place of E[u], the same ranking without overflow. `var` is a
    reporting record only (`name`, `alpha`): it is solved by `dp.solve_var` (threshold DP and
    the outer search over the threshold), not by a greedy score."""
    if c.objective == "var":
        return dp.Objective("var", None, 0.0, True, alpha=float(c.alpha))
    obj = dp.make_objective(
        c.objective,
        alpha=c.alpha,
        threshold=c.threshold,
        target=c.target,
        utility=c.utility,
        risk=c.risk,
    )
    if _is_exp_utility(obj):
        obj = obj._replace(score=exp_utility_score(float(obj.param)))
    return obj


def _is_exp_utility(obj: dp.Objective) -> bool:
    return obj.name == "utility" and obj.param is not None and obj.param != 0.0


@lru_cache(maxsize=64)  # one object per beta: jit sees one static score
def exp_utility_score(beta: float) -> Score:
    """Greedy score ranking laws as E[u(x)], u(x) = (1 - exp(-beta x)) / beta, beta != 0:
    `-sign(beta) log E[exp(-beta x)]` by log-sum-exp (a strictly increasing function of E[u],
    so the same optimal actions; finite where `exp(-beta x)` overflows, and atoms of zero
    probability contribute nothing, where E[u] gives 0 * inf = NaN)."""
    sign = 1.0 if beta > 0 else -1.0

    def score(values: jax.Array, probs: jax.Array) -> jax.Array:
        logp = jnp.log(jnp.maximum(probs, 0.0))
        return -sign * jax.scipy.special.logsumexp(logp - beta * values, axis=-1)

    return score


LOG_FLOAT64_MAX = float(np.log(np.finfo(np.float64).max))  # ~709.78


def objective_value(obj: dp.Objective, returns: np.ndarray, probs: np.ndarray,
                    policy: str = "optimal") -> float:
    """The reported value of `obj` for the law of G (float64). For the exponential utility
    E[u(G)] = -expm1(L) / beta with L = log E[exp(-beta G)] by log-sum-exp; a ValueError naming
    --risk and the bound when L exceeds the float64 exp range (E[u] is then +-inf in float64).
    `policy` names the law in that message."""
    returns = np.asarray(returns, np.float64)
    probs = np.asarray(probs, np.float64)
    if obj.name == "var":
        from jaxrl.distributions import FiniteSupport, value_at_risk

        with jax.enable_x64(True):
            return float(value_at_risk(FiniteSupport(jnp.asarray(returns), jnp.asarray(probs)),
                                       obj.alpha))
    if _is_exp_utility(obj):
        beta = float(obj.param)
        keep = probs > 0
        logm = float(np.logaddexp.reduce(np.log(probs[keep]) - beta * returns[keep]))
        if logm > LOG_FLOAT64_MAX:
            raise ValueError(
                f"--risk {beta:g}: E[u(G)] = (1 - E[exp(-risk G)]) / risk of the {policy} policy "
                f"overflows float64: log E[exp(-risk G)] = {logm:.6g} > {LOG_FLOAT64_MAX:.2f} "
                "(the log of the largest float64); use a smaller |--risk| or smaller rewards")
        return float(-np.expm1(logm) / beta)
    with jax.enable_x64(True):
        return float(dp.objective_value(obj, jnp.asarray(returns), jnp.asarray(probs)))


def _solve(mdp: dp.MDP, obj: dp.Objective, c) -> dict[str, Any]:
    if mdp.horizon > 0:
        scalar = c.get("solver", "exact") == "scalar"
        if obj.name == "var":
            sol, name = dp.solve_var(mdp, obj.alpha), "scalar (threshold DP + search over tau)"
        elif scalar:
            sol, name = dp.solve_scalar(mdp, obj), "scalar stock-augmented DP"
        else:
            sol, name = dp.solve_exact(mdp, obj), "exact"
        value = sol.objective_value
        if _is_exp_utility(obj):  # the score is log-sum-exp; report E[u(G)]
            value = objective_value(obj, sol.returns, sol.return_probs)
        return dict(
            value=value,
            c0=sol.c0,
            b=sol.b,
            policy=sol.policy,
            stocks=sol.stocks,
            reachable=sol.reachable,
            returns=sol.returns,
            probs=sol.return_probs,
            solver=name,
        )
    if obj.name == "var":
        raise ValueError("--objective=var needs a finite horizon (the --mdp file has horizon 0)")
    rmax = float(np.abs(mdp.R).max()) / (1.0 - mdp.gamma)
    support = np.linspace(-rmax, rmax, int(c.num_atoms))
    stocks = np.linspace(-rmax, rmax, int(c.num_stocks))
    sol = grid.grid_value_iteration(
        mdp, obj, stocks, support, tol=float(c.tol), max_sweeps=int(c.max_sweeps)
    )
    return dict(
        value=sol.objective_value,
        c0=sol.c0,
        b=sol.b,
        policy=sol.policy,
        stocks=sol.stocks,
        reachable=None,
        returns=sol.support,
        probs=sol.return_probs,
        solver=f"grid ({c.num_stocks} stocks x {c.num_atoms} atoms, {sol.sweeps} sweeps, "
        + ("converged)" if sol.converged else
           f"NOT converged: {'stalled' if sol.stalled else 'cap'}, residual {sol.residual:.2g})"),
    )


def _plot(path: str, opt: dict, neutral: dict, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for sol, label in ((opt, "optimal (stock-augmented DP)"), (neutral, "risk-neutral (mean)")):
        x, p = np.asarray(sol["returns"]), np.asarray(sol["probs"])
        keep = p > 1e-12
        ax.step(
            np.concatenate([[x[keep][0] - 0.5], x[keep]]),
            np.concatenate([[0.0], np.cumsum(p[keep])]),
            where="post",
            label=label,
        )
    ax.set_xlabel("return G")
    ax.set_ylabel("P(G <= x)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _jsonable(x):
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return (
            [None if not np.isfinite(v) else float(v) for v in a.ravel()]
            if a.ndim == 1
            else [_jsonable(r) for r in a]
            if a.ndim > 1
            else float(a)
        )
    return a.tolist()


def run(c: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Solves the configured MDP/objective, writes config.json, summary.json and the plot.

    Everything is validated and solved before `workdir` is created: a bad config or file, a
    problem too large for memory (`check_exact_size`) or a non-finite result is a one-line
    ValueError and leaves no file behind."""
    validate_config(c)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir {workdir} exists and is not a directory")
    obj = make_objective(c)
    mdp = make_mdp(c)
    if mdp.horizon > 0:
        if obj.name != "var" and c.get("solver", "exact") == "exact":
            check_exact_size(mdp)  # the scalar solvers check their own (linear) memory
    elif obj.name == "var":
        raise ValueError("--objective=var needs a finite horizon (the --mdp file has horizon 0)")
    else:
        dp.check_stationary(obj, mdp.gamma)
    t0 = time.perf_counter()
    opt = _solve(mdp, obj, c)
    neutral = _solve(mdp, dp.make_objective("mean"), c)
    seconds = time.perf_counter() - t0
    neutral_value = objective_value(obj, neutral["returns"], neutral["probs"], "risk-neutral")
    opt_mean = float(np.dot(opt["returns"], opt["probs"]))
    neutral_mean = float(np.dot(neutral["returns"], neutral["probs"]))
    for name, v in (("objective value", opt["value"]),
                    ("risk-neutral policy's objective value", neutral_value),
                    ("optimal policy's mean return", opt_mean),
                    ("risk-neutral mean return", neutral_mean)):
        if not math.isfinite(v):
            raise ValueError(f"the {name} is not finite ({v}) for objective {obj.name!r} "
                             f"(param {obj.param}); nothing written to {workdir}")
    try:
        os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    except OSError as e:
        raise ValueError(f"--workdir {workdir} cannot be created ({e.strerror or e})") from e
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(c.to_dict(), f, indent=1)
    axes = ("time", "state", "stock") if mdp.horizon > 0 else ("state", "stock")
    summary = dict(
        objective=obj.name,
        alpha=obj.alpha,
        param=obj.param,
        solver=opt["solver"],
        num_states=int(mdp.P.shape[0]),
        num_actions=int(mdp.P.shape[1]),
        gamma=mdp.gamma,
        horizon=mdp.horizon,
        objective_value=opt["value"],
        b=opt["b"],
        c0=opt["c0"],
        risk_neutral_objective_value=neutral_value,
        optimal_mean=opt_mean,
        risk_neutral_mean=neutral_mean,
        policy_axes=list(axes),
        policy=_jsonable(opt["policy"]),
        stocks=_jsonable(opt["stocks"]),
        reachable=_jsonable(opt["reachable"]),
        returns=_jsonable(opt["returns"]),
        return_probs=_jsonable(opt["probs"]),
        risk_neutral_return_probs=_jsonable(neutral["probs"]),
        seconds=seconds,
    )
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f)
    _plot(
        os.path.join(workdir, "plots", "return_distribution.png"),
        opt,
        neutral,
        f"{obj.name}: optimal {opt['value']:.4f} vs risk-neutral {neutral_value:.4f}",
    )
    return summary


def reproduce(root: str) -> str:
    """Runs the quick variant (CVaR on the built-in MDP, and the stock-necessity example)."""
    from experiments.configs import dp as cfg

    c = cfg.get_config("quick")
    s1 = run(c, os.path.join(root, "dp"))
    c2 = cfg.get_config("quick")
    c2.builtin, c2.objective, c2.threshold = "stock_necessity", "threshold", 1.0
    s2 = run(c2, os.path.join(root, "dp", "stock_necessity"))
    nec = stock_necessity_mdp()  # best Markov policy (action a function of the state only)
    best_markov = 0.0
    for bits in range(2 ** nec.P.shape[0]):
        pol = np.array([(bits >> s) & 1 for s in range(nec.P.shape[0])], np.int32)
        ret, law = dp.evaluate_exact(nec, np.broadcast_to(pol[None, :, None], (3, 5, 64)))
        best_markov = max(best_markov, float(law[ret >= 1.0 - 1e-9].sum()))
    mdp = make_mdp(c)
    v, _ = dp.classic_value_iteration(mdp)
    mean_c = cfg.get_config("quick")
    mean_c.objective = "mean"
    s3 = run(mean_c, os.path.join(root, "dp", "mean"))
    rows = [
        (
            "CVaR_0.1, random MDP (seed 4, S=4, A=3, H=4)",
            s1["objective_value"],
            s1["risk_neutral_objective_value"],
            "optimum > risk-neutral",
        ),
        (
            "P(G >= 1), digest's stock-necessity MDP",
            s2["objective_value"],
            best_markov,
            "0.75 with stock, 0.5 best Markov (digest)",
        ),
        ("E[G] (mean) vs classic VI", s3["objective_value"], float(mdp.mu0 @ v), "equal (to 1e-9)"),
    ]
    lines = [
        "## Distributional DP with stock augmentation (`experiments/dp.py`)",
        "",
        "Exact finite-horizon stock-augmented distributional DP (float64).",
        "",
        "| problem | optimal (ours) | comparison | ground truth |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b:.6f} | {c:.6f} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        "The comparison column is the risk-neutral policy's value, the best Markov "
        "Markov policy without stock (enumerated), and classic VI respectively.",
        "",
        "![return distributions](dp/plots/return_distribution.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """The command line: flags into the config, `run`, one JSON line on stdout; a user error is
    one line `error: ...` on stderr with exit status 2 (`experiments.common.guarded_main`)."""
    del argv
    c = _CONFIG.value
    for name, fl in (
        ("mdp", _MDP),
        ("objective", _OBJECTIVE),
        ("alpha", _ALPHA),
        ("threshold", _THRESHOLD),
        ("target", _TARGET),
        ("utility", _UTILITY),
        ("risk", _RISK),
        ("solver", _SOLVER),
    ):
        if fl.value is not None:
            c[name] = fl.value
    summary = common.guarded_main(lambda: run(c, _WORKDIR.value))
    keys = ("objective", "objective_value", "b", "risk_neutral_objective_value", "solver")
    print(json.dumps({k: summary[k] for k in keys}))


if __name__ == "__main__":
    common.run_app(main)
