"""Benchmark: one sweep of stock-augmented distributional VI vs the frozen NumPy references.

  python -m experiments.benchmarks.distdp [--anchor=/work/shared/anchors/distdp] [--batched=16]
      [--control-reps=3] [--default-xla]

Instance: ../shared/anchors/distdp/problem.py (S=64, A=4, 128 stocks, 101 atoms, gamma 0.9).
Times, in ONE process and interleaved: `jaxrl.dp.grid.grid_sweep_probs` and `grid_sweep` (float32,
jitted), the loop reference `numpy_loop.sweep` (float64) and the scipy.sparse reference
`numpy_vec.sweep` (float64 and float32, 2 threads or `--vec-threads`), imported from the anchor folder (not copied). Checks
agreement with the float64 loop after 3 sweeps (max abs difference of probabilities, greedy
actions). Then control (`--control-reps`): the time to the optimal CVaR policy by the
distributional grid VI vs the scalar stock-augmented VI on the same stock grid
(`jaxrl.dp.scalar.scalar_grid_value_iteration`), their policies' agreement and both policies'
CVaR by the distributional evaluator. Then the batched case: 256 random MDPs (S=8, A=2, 32 stocks, 51 atoms) solved to
convergence by `jaxrl.dp.grid.batched_value_iteration`, as one vmapped loop to the end and in
compacted rounds (stopped MDPs dropped between rounds), vs the loop reference one MDP at a time (`--batched` of them,
16 by default, scaled to 256 and the table says so; `--batched 256` runs them all, ~30 min).
Prints a Markdown table.

Unless `XLA_FLAGS` already names them or `--default-xla` is given, the script appends the XLA:CPU
flags `--xla_cpu_use_fusion_emitters=false --xla_cpu_experimental_ynn_fusion_type=` to
`XLA_FLAGS` (about 2x faster sweeps on jax 0.10.2); they must be set before jax is imported.
(Until 4 Dec 2026 the script skipped them whenever `XLA_FLAGS` existed, which it always did once
`experiments/__init__.py` put the CPU device count there.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TUNED_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_cpu_experimental_ynn_fusion_type="
# Appended to XLA_FLAGS (which `experiments/__init__.py` may already hold a CPU device count in)
# unless the user set either flag or passed --default-xla.
_flags = os.environ.get("XLA_FLAGS", "")
if ("--default-xla" not in sys.argv and "xla_cpu_use_fusion_emitters" not in _flags
        and "xla_cpu_experimental_ynn_fusion_type" not in _flags):
    os.environ["XLA_FLAGS"] = f"{_flags} {TUNED_XLA_FLAGS}".strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxrl.dp import grid, tabular  # noqa: E402

FLOOR_S = 0.009  # the anchor README's compute floor per sweep on the 2-core CPU


def _cvar_dU(op):
    return grid.utility_weights(lambda x: jnp.minimum(x, 0.0), op.stocks, op.support)


def single_sweep(anchor, reps, threads=2):
    import numpy_loop
    import numpy_vec
    from problem import make_problem

    pr = make_problem()
    S = pr["P"].shape[0]
    mdp = tabular.validate_mdp(pr["P"], pr["R"], np.ones(S) / S, pr["gamma"], 0)
    t = time.perf_counter()
    op = grid.make_grid_operator(mdp, pr["c"], pr["z"], jnp.float32)
    setup_s = time.perf_counter() - t
    dU = _cvar_dU(op)
    eta0 = jnp.asarray(pr["eta0"], jnp.float32)
    F0 = jnp.cumsum(eta0, -1)
    t = time.perf_counter()
    jax.block_until_ready(grid.grid_sweep_probs(eta0, op, dU))
    compile_s = time.perf_counter() - t
    jax.block_until_ready(grid.grid_sweep(F0, op, dU))
    vop = numpy_vec.setup(pr["P"], pr["R"], pr["c"], pr["z"], pr["gamma"], "sparse", np.float64)
    vop32 = numpy_vec.setup(pr["P"], pr["R"], pr["c"], pr["z"], pr["gamma"], "sparse",
                            np.float32)
    eta32 = pr["eta0"].astype(np.float32)
    with jax.enable_x64(True):  # ours in float64 too: equal precision with the reference
        op64 = grid.make_grid_operator(mdp, pr["c"], pr["z"], jnp.float64)
        dU64 = _cvar_dU(op64)
        eta64 = jnp.asarray(pr["eta0"], jnp.float64)
        jax.block_until_ready(grid.grid_sweep_probs(eta64, op64, dU64))

    def ours64():
        with jax.enable_x64(True):
            return grid.grid_sweep_probs(eta64, op64, dU64)

    fns = {"ours": lambda: grid.grid_sweep_probs(eta0, op, dU),
           "ours_cdf": lambda: grid.grid_sweep(F0, op, dU),
           "ours64": ours64,
           "vec": lambda: numpy_vec.sweep(pr["eta0"], vop, threads),
           "vec32": lambda: numpy_vec.sweep(eta32, vop32, threads)}
    times = {k: [] for k in fns}
    for _ in range(reps):  # interleaved, so a change of load hits all of them
        for k, fn in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[k].append(time.perf_counter() - t)
    # agreement after 3 sweeps vs the float64 loop (the loop's time is the median of its sweeps)
    util = np.minimum(pr["c"][:, None] + pr["z"][None, :], 0.0)
    eta, E, F = pr["eta0"], eta0, F0
    loop_ts, max_diff, max_diff_cdf, mismatch = [], 0.0, 0.0, 0
    for _ in range(3):
        a_ref = np.einsum("sjak,jk->sja", eta, util).argmax(-1)  # greedy of the loop's input
        t = time.perf_counter()
        eta = numpy_loop.sweep(eta, pr["P"], pr["R"], pr["c"], pr["z"], pr["gamma"])
        loop_ts.append(time.perf_counter() - t)
        E, a_ours = grid.grid_sweep_probs(E, op, dU)
        F, a_cdf = grid.grid_sweep(F, op, dU)
        mismatch += int((np.asarray(a_ours) != a_ref).sum() + (np.asarray(a_cdf) != a_ref).sum())
        max_diff = max(max_diff, float(np.abs(np.asarray(E, np.float64) - eta).max()))
        max_diff_cdf = max(max_diff_cdf,
                           float(np.abs(np.asarray(grid.cdf_to_probs(F), np.float64) - eta).max()))
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update({k + "_all": v for k, v in times.items()})
    return dict(out, threads=threads, compile=compile_s, setup=setup_s, loop=statistics.median(loop_ts),
                loop_all=loop_ts, max_diff=max_diff, max_diff_cdf=max_diff_cdf,
                mismatch=mismatch)


def control(reps, alpha=0.25, tol=1e-6, max_sweeps=1000):
    """Time to the optimal CVaR policy on the anchor problem: distributional grid VI vs scalar
    stock-augmented VI on the same stock grid (float32, whole public calls, interleaved, after
    one warm-up each); both policies are then evaluated by the distributional evaluator."""
    from problem import make_problem

    from jaxrl.dp import make_objective, scalar

    pr = make_problem()
    S = pr["P"].shape[0]
    mdp = tabular.validate_mdp(pr["P"], pr["R"], np.ones(S) / S, pr["gamma"], 0)
    obj = make_objective("cvar", alpha=alpha)
    c, z = pr["c"], pr["z"]
    solvers = {
        "grid": lambda t=tol: grid.grid_value_iteration(mdp, obj, c, z, tol=t,
                                                       max_sweeps=max_sweeps),
        "scalar": lambda t=tol: scalar.scalar_grid_value_iteration(mdp, obj, c, tol=t,
                                                                  max_sweeps=max_sweeps)}
    warm = {}
    for k, fn in solvers.items():  # compile (the grid solve with a loose tol: one sweep)
        t = time.perf_counter()
        fn(1e9 if k == "grid" else tol)
        warm[k] = time.perf_counter() - t
    times, sols = {k: [] for k in solvers}, {}
    for _ in range(reps):
        for k, fn in solvers.items():
            t = time.perf_counter()
            sols[k] = fn()
            times[k].append(time.perf_counter() - t)
    ev = {k: grid.grid_policy_evaluation(mdp, obj, sols[k].policy, c, z, tol=tol,
                                         max_sweeps=max_sweeps) for k in solvers}
    g, sc = sols["grid"], sols["scalar"]
    # pairs where the grid solver's best action beats the runner-up by > 1e-5 in E f (on
    # near-ties either action is optimal to that precision and the solvers break ties apart)
    dU = grid.utility_weights(obj.utility, jnp.asarray(c, jnp.float32),
                              jnp.asarray(z, jnp.float32))
    q = np.sort(np.asarray(jnp.einsum("sjak,jk->sja", jnp.asarray(g.F), dU)), axis=-1)
    clear = q[..., -1] - q[..., -2] > 1e-5
    same = np.asarray(g.policy) == np.asarray(sc.policy)
    return dict(clear=int(clear.sum()), agree_clear=float(same[clear].mean()),alpha=alpha, tol=tol, times=times, warm=warm,
                sweeps={"grid": g.sweeps, "scalar": sc.sweeps},
                converged={"grid": g.converged, "scalar": sc.converged},
                own={"grid": (g.objective_value, g.b), "scalar": (sc.objective_value, sc.b)},
                evaluated={k: (e.objective_value, e.b, e.converged) for k, e in ev.items()},
                agree=float((np.asarray(g.policy) == np.asarray(sc.policy)).mean()))


def batch_instance():
    """The batched case's 256 random MDPs (S=8, A=2, 32 stocks x 51 atoms on [-10, 10], gamma
    0.9, float32): (P, R, stocks, support, stacked operators, CVaR greedy weights dU, start
    CDFs F0 `[B, S, NC, A, K]` = Proj(delta_0))."""
    B, S, A, NC, K, gamma = 256, 8, 2, 32, 51, 0.9
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(S), size=(B, S, A))
    R = rng.uniform(-1.5, 1.5, size=(B, S, A, S))
    c, z = np.linspace(-10, 10, NC), np.linspace(-10, 10, K)
    ops = [grid.make_grid_operator(tabular.MDP(P[i], R[i], np.ones(S) / S, gamma, 0), c, z)
           for i in range(B)]
    op = jax.tree.map(lambda *x: jnp.stack(x), *ops)
    op = op._replace(stocks=ops[0].stocks, support=ops[0].support)
    F0 = jnp.broadcast_to(jnp.asarray(grid.delta0_cdf(z), jnp.float32), (B, S, NC, A, K))
    return P, R, c, z, op, _cvar_dU(ops[0]), F0


def batched(n_loop, tol=1e-6, max_sweeps=400, reps=3):
    import numpy_loop

    P, R, c, z, op, dU, F0 = batch_instance()
    B, gamma = F0.shape[0], 0.9
    # "cap": the value-based stop off (tol -1, no stall rule), every MDP swept max_sweeps times
    runs = {"ours": dict(compact=True, tol=tol), "ours_full": dict(compact=False, tol=tol),
            "cap": dict(compact=False, tol=-1.0, stall_sweeps=0)}
    first, times = {}, {k: [] for k in runs}
    for k, kw in runs.items():  # compile (every batch size the compaction meets) + first run
        t = time.perf_counter()
        grid.batched_value_iteration(F0, op, dU, max_sweeps=max_sweeps, **kw)
        first[k] = time.perf_counter() - t
    for _ in range(reps):  # interleaved
        for k, kw in runs.items():
            t = time.perf_counter()
            out = grid.batched_value_iteration(F0, op, dU, max_sweeps=max_sweeps, **kw)
            times[k].append(time.perf_counter() - t)
            if k == "ours":
                F, sweeps, err = out
    # loop reference, one MDP at a time, same stopping rule as `grid._iterate`: the greedy
    # values max_a E min(c_j + Z, 0) change by < tol in the sup norm
    util = np.minimum(c[:, None] + z[None, :], 0.0)
    t = time.perf_counter()
    diffs, vdiffs, loop_sweeps = [], [], []
    for i in range(n_loop):
        eta = np.asarray(grid.cdf_to_probs(F0[i]), np.float64)
        v = np.einsum("sjak,jk->sja", eta, util).max(-1)
        n, done = 0, False
        while not done and n < max_sweeps:
            eta = numpy_loop.sweep(eta, P[i], R[i], c, z, gamma)
            v_new = np.einsum("sjak,jk->sja", eta, util).max(-1)
            done, v, n = np.abs(v_new - v).max() < tol, v_new, n + 1
        loop_sweeps.append(n)
        ours_p = np.asarray(grid.cdf_to_probs(F[i]), np.float64)
        diffs.append(float(np.abs(ours_p - eta).max()))
        vdiffs.append(float(np.abs(np.einsum("sjak,jk->sja", ours_p, util).max(-1) - v).max()))
    loop_each = (time.perf_counter() - t) / n_loop
    both = [(d, dv) for d, dv, n, e in zip(diffs, vdiffs, loop_sweeps, err, strict=False)
            if n < max_sweeps and e < tol]
    return dict(ours=statistics.median(times["ours"]), ours_all=times["ours"],
                ours_full=statistics.median(times["ours_full"]), ours_full_all=times["ours_full"],
                to_cap=statistics.median(times["cap"]), to_cap_all=times["cap"],
                stalled=int(((err >= tol) & (np.asarray(sweeps) < max_sweeps)).sum()),
                first=first, loop_256=loop_each * B, n_loop=n_loop, cap=max_sweeps,
                sweeps=np.asarray(sweeps), loop_sweeps=np.asarray(loop_sweeps),
                max_diff=max(diffs), max_diff_converged=max((d for d, _ in both), default=np.nan),
                max_vdiff_converged=max((dv for _, dv in both), default=np.nan),
                n_converged_both=len(both))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchor", default="/work/shared/anchors/distdp")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batched", type=int, default=16,
                    help="MDPs the loop reference solves (0: skip the batched case)")
    ap.add_argument("--tol", type=float, default=1e-6, help="batched: convergence tolerance")
    ap.add_argument("--max-sweeps", type=int, default=400, help="batched: sweep cap")
    ap.add_argument("--vec-threads", type=int, default=2,
                    help="threads of the scipy.sparse reference (1: with `taskset -c 0` for a "
                    "one-core comparison)")
    ap.add_argument("--batched-reps", type=int, default=3, help="batched: repetitions")
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--control-reps", type=int, default=3,
                    help="time-to-policy repetitions, grid VI vs scalar VI (0: skip)")
    ap.add_argument("--alpha", type=float, default=0.25, help="control: CVaR level")
    ap.add_argument("--default-xla", action="store_true", help="do not set the tuned XLA_FLAGS")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.anchor))
    r = None if args.skip_single else single_sweep(args.anchor, args.reps, args.vec_threads)
    ctl = control(args.control_reps, args.alpha) if args.control_reps > 0 else None
    b = batched(args.batched, args.tol, args.max_sweeps, args.batched_reps) if args.batched else None
    load = os.getloadavg()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print("| measure | value |\n|---|---|")
    if r is not None:
        _print_single(r)
    if ctl is not None:
        _print_control(ctl)
    if b is not None:
        _print_batched(b)


def _fmt(xs):
    return ", ".join(f"{x:.3f}" for x in xs)


def _print_single(r):
    print(f"| ours `grid_sweep_probs` (float32) s/sweep, median | {r['ours']:.3f} "
          f"({_fmt(r['ours_all'])}; compile+first {r['compile']:.1f} s, "
          f"operator setup {r['setup']:.1f} s) |")
    print(f"| ours `grid_sweep` (CDF in/out) s/sweep, median | {r['ours_cdf']:.3f} "
          f"({_fmt(r['ours_cdf_all'])}) |")
    print(f"| numpy_loop float64 s/sweep, median of 3 | {r['loop']:.3f} ({_fmt(r['loop_all'])}) |")
    print(f"| numpy_vec sparse float64, {r['threads']} threads s/sweep, median | {r['vec']:.3f} "
          f"({_fmt(r['vec_all'])}) |")
    print(f"| ours `grid_sweep_probs` float64 s/sweep, median | {r['ours64']:.3f} "
          f"({_fmt(r['ours64_all'])}) |")
    print(f"| numpy_vec sparse float32, {r['threads']} threads s/sweep, median | {r['vec32']:.3f} "
          f"({_fmt(r['vec32_all'])}) |")
    print(f"| **equal precision float32: numpy_vec f32 / ours f32** | {r['vec32'] / r['ours']:.2f}x |")
    print(f"| **equal precision float64: numpy_vec f64 / ours f64** | {r['vec'] / r['ours64']:.2f}x |")
    print(f"| mixed (earlier claim): numpy_vec f64 / ours f32 | {r['vec'] / r['ours']:.2f}x |")
    print(f"| speed-up vs loop (target >= 15x) | {r['loop'] / r['ours']:.1f}x |")
    print(f"| speed-up vs numpy_vec {r['threads']} threads (target >= 1.3x) | "
          f"{r['vec'] / r['ours']:.2f}x |")
    print(f"| fraction of the ~9 ms floor (0.009 s / ours) | {FLOOR_S / r['ours']:.3f} |")
    print(f"| max abs diff vs float64 loop after 3 sweeps (probabilities) | {r['max_diff']:.2e} |")
    print(f"| same through the CDF API (`grid_sweep`, cdf_to_probs) | {r['max_diff_cdf']:.2e} |")
    print(f"| greedy actions differing (3 sweeps, both APIs) | {r['mismatch']} |")


def _print_control(r):
    t, w = r["times"], r["warm"]
    mg, ms = statistics.median(t["grid"]), statistics.median(t["scalar"])
    print(f"| control: CVaR alpha={r['alpha']}, tol {r['tol']:g}, float32, whole calls | |")
    print(f"| distributional `grid_value_iteration` s to the policy, median of {len(t['grid'])} "
          f"| {mg:.3f} ({_fmt(t['grid'])}; {r['sweeps']['grid']} sweeps, converged "
          f"{r['converged']['grid']}; warm-up {w['grid']:.1f} s) |")
    print(f"| scalar `scalar_grid_value_iteration` s to the policy, median | {ms:.3f} "
          f"({_fmt(t['scalar'])}; {r['sweeps']['scalar']} sweeps, converged "
          f"{r['converged']['scalar']}; warm-up {w['scalar']:.1f} s) |")
    print(f"| **time to the policy: grid / scalar** | **{mg / ms:.0f}x** |")
    print(f"| greedy actions equal, fraction of (state, stock) pairs | {r['agree']:.4f} |")
    print(f"| same, on the {r['clear']} pairs whose best action leads by > 1e-5 in E f | "
          f"{r['agree_clear']:.4f} |")
    for k in ("grid", "scalar"):
        v, b = r["own"][k]
        ev, evb, conv = r["evaluated"][k]
        print(f"| {k} policy: CVaR by its solver (b) / by `grid_policy_evaluation` (b, "
              f"converged) | {v:.5f} ({b:.3f}) / {ev:.5f} ({evb:.3f}, {conv}) |")


def _print_batched(b):
    sw = b["sweeps"]
    print(f"| batched 256 MDPs: sweeps per MDP | {sw.min()}-{sw.max()}, median "
          f"{int(np.median(sw))}, {int((sw >= b['cap']).sum())} at the cap {b['cap']}, "
          f"{b['stalled']} stopped by the stall rule |")
    print(f"| batched: every MDP to the cap (no value-based stop, `compact=False`) s, median of "
          f"{len(b['to_cap_all'])} | {b['to_cap']:.2f} ({_fmt(b['to_cap_all'])}; "
          f"compile+first {b['first']['cap']:.1f} s; {sw.size * b['cap']} MDP-sweeps, "
          f"{sw.size * b['cap'] / sw.sum():.2f}x the {int(sw.sum())} needed) |")
    print(f"| batched: one vmapped loop to the end (`compact=False`) s, median of "
          f"{len(b['ours_full_all'])} | {b['ours_full']:.2f} ({_fmt(b['ours_full_all'])}; "
          f"compile+first {b['first']['ours_full']:.1f} s; it sweeps all 256 {sw.max()} times: "
          f"{sw.size * sw.max()} MDP-sweeps for {int(sw.sum())} needed, "
          f"{sw.sum() / (sw.size * sw.max()):.2f}) |")
    print(f"| batched: compacted rounds (`compact=True`, default) s, median | {b['ours']:.2f} "
          f"({_fmt(b['ours_all'])}; compile+first {b['first']['ours']:.1f} s) |")
    print(f"| **batched: one loop / compacted** | **{b['ours_full'] / b['ours']:.2f}x** |")
    print(f"| **batched: every MDP to the cap / compacted with the value-based stop** | "
          f"**{b['to_cap'] / b['ours']:.2f}x** |")
    scaled = "" if b["n_loop"] == 256 else f", timed on {b['n_loop']} and scaled x256/{b['n_loop']}"
    print(f"| batched, loop reference one by one s{scaled} | {b['loop_256']:.1f} "
          f"(sweeps {b['loop_sweeps'].min()}-{b['loop_sweeps'].max()}) |")
    print(f"| batched speed-up (loop / compacted) | {b['loop_256'] / b['ours']:.1f}x |")
    print(f"| batched max abs diff vs loop (float32 vs float64), all / the "
          f"{b['n_converged_both']} converged on both sides | {b['max_diff']:.2e} / "
          f"{b['max_diff_converged']:.2e} |")
    print(f"| batched: same for the greedy values max_a E min(c + Z, 0), converged on both sides | "
          f"{b['max_vdiff_converged']:.2e} |")


if __name__ == "__main__":
    main()
