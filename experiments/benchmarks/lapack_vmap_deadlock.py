"""Try to reproduce the reported deadlock of batched LAPACK calls under `vmap` (jaxlib CPU).

  python -m experiments.benchmarks.lapack_vmap_deadlock [--timeout=60] [--reps=30]

`jaxrl/networks.py` (orthogonal init) and `jaxrl/bayes_pg/gp.py` (Cholesky) replaced LAPACK by
hand kernels because "two batched LAPACK calls running at once deadlocked jaxlib's CPU thread
pool (jax 0.10.2, 2 cores)", seen as a hang of PPO's init. This script runs each suspected
pattern in a fresh subprocess with a wall-clock timeout and prints one line per case:
`ok <seconds>` or `HANG (killed after <timeout> s)`. Cases (each `reps` times, fresh inputs):

* `<op>_pair`: one jitted program with two independent vmapped calls of `<op>` (qr, cholesky,
  solve, lstsq, eigh) over a batch of 64 16x16 matrices, so XLA may run them concurrently;
* `<op>_threads`: the same vmapped call from two Python threads at once;
* `<op>_devices`: the PROPS pattern, every CPU device (`--devices=N`) running the vmapped op
  (16 matrices of 128 x 128 per device; small matrices are not split into pool tasks)
  in a `fori_loop` of one `shard_map`ped program at the same time;
* `orthogonal_init`: the original pattern, a flax actor-critic with
  `jax.nn.initializers.orthogonal` (LAPACK QR) initialised under `vmap` over 64 seeds.

`solve` and `lstsq` go through `jaxrl.linalg` with the backend `--linalg` (default `lapack`,
the plain batched LAPACK call; `serial` is the library's default). Measured 2026-12-05 (jax
0.10.2, 2-core CPU, `--devices=2 --cases=solve_devices,lstsq_devices --reps=30`): see
`RESULTS_lapack.md`.

The exit status is 0 whatever the outcome (a measurement, not a test); the last line says
whether any case hung.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = r"""
import sys, threading
import jax, jax.numpy as jnp
from jaxrl import linalg
case, reps = sys.argv[1], int(sys.argv[2])
ops = {
    "qr": lambda a: jnp.linalg.qr(a)[0],
    "cholesky": lambda a: jnp.linalg.cholesky(a @ a.T + len(a) * jnp.eye(len(a))),
    "solve": lambda a: linalg.solve(a @ a.T + len(a) * jnp.eye(len(a)), a[:, 0]),
    "lstsq": lambda a: linalg.lstsq(a[:, : len(a) // 2], a[:, 0]),
    "eigh": lambda a: jnp.linalg.eigh(a @ a.T)[0],
}
if case == "orthogonal_init":
    import flax.linen as nn
    orth = jax.nn.initializers.orthogonal
    class AC(nn.Module):
        @nn.compact
        def __call__(self, x):
            a = x
            c = x
            for _ in range(2):
                a = nn.tanh(nn.Dense(64, kernel_init=orth(2 ** 0.5))(a))
                c = nn.tanh(nn.Dense(64, kernel_init=orth(2 ** 0.5))(c))
            return nn.Dense(2, kernel_init=orth(0.01))(a), nn.Dense(1, kernel_init=orth(1.0))(c)
    init = jax.jit(jax.vmap(lambda k: AC().init(k, jnp.zeros(4))))
    for r in range(reps):
        jax.block_until_ready(init(jax.random.split(jax.random.PRNGKey(r), 64)))
else:
    op, mode = case.rsplit("_", 1)
    f = jax.vmap(ops[op])
    if mode == "devices":
        # the PROPS pattern: every device runs the vmapped op inside a loop at the same time
        from jax.sharding import Mesh, PartitionSpec as P
        mesh = Mesh(jax.devices(), ("d",))
        def prog(a):
            return jax.lax.fori_loop(0, 5, lambda i, x: x + f(a + 0.01 * i), jnp.zeros_like(f(a)))
        g = jax.jit(jax.shard_map(prog, mesh=mesh, in_specs=P("d"), out_specs=P("d")))
        for r in range(reps):
            jax.block_until_ready(g(jax.random.normal(jax.random.PRNGKey(r),
                                                      (16 * len(jax.devices()), 128, 128))))
    elif mode == "pair":
        g = jax.jit(lambda a, b: (f(a), f(b)))
        for r in range(reps):
            k1, k2 = jax.random.split(jax.random.PRNGKey(r))
            jax.block_until_ready(g(jax.random.normal(k1, (64, 16, 16)),
                                    jax.random.normal(k2, (64, 16, 16))))
    else:
        g = jax.jit(f)
        def work(seed):
            for r in range(reps):
                jax.block_until_ready(g(jax.random.normal(jax.random.PRNGKey(seed + 1000 * r),
                                                          (64, 16, 16))))
        ts = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
        [t.start() for t in ts]
        [t.join() for t in ts]
print("done")
"""

CASES = [f"{op}_{mode}" for op in ("qr", "cholesky", "solve", "lstsq", "eigh")
         for mode in ("pair", "threads", "devices")] + ["orthogonal_init"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--linalg", default="lapack", choices=("lapack", "serial", "plain"),
                    help="jaxrl.linalg backend of the solve and lstsq cases (JAXRL_LINALG)")
    ap.add_argument("--devices", type=int, default=0,
                    help="> 0: XLA_FLAGS=--xla_force_host_platform_device_count=N in the child")
    args = ap.parse_args()
    cases = args.cases.split(",")
    bad = [c for c in cases if c not in CASES]
    if bad or args.timeout <= 0 or args.reps < 1 or args.devices < 0:
        print(f"error: bad --cases {bad} / --timeout {args.timeout} / --reps {args.reps} / "
              f"--devices {args.devices}")
        sys.exit(2)
    env = dict(os.environ, JAXRL_LINALG=args.linalg)
    if args.devices:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={args.devices}").strip()
    import jax

    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()}, "
          f"XLA_FLAGS={env.get('XLA_FLAGS', '')!r}, jaxrl.linalg {args.linalg}, reps {args.reps}", flush=True)
    hung = []
    for case in cases:
        t0 = time.time()
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, case, str(args.reps)],
                                 capture_output=True, text=True, timeout=args.timeout, env=env)
            status = "ok" if "done" in out.stdout else f"FAILED rc={out.returncode}"
            if status != "ok":
                status += " " + out.stderr.strip().splitlines()[-1][:200]
            print(f"{case:18s} {status} {time.time() - t0:.1f} s", flush=True)
        except subprocess.TimeoutExpired:
            hung.append(case)
            print(f"{case:18s} HANG (killed after {args.timeout:.0f} s)", flush=True)
    print(f"hung: {hung if hung else 'none'}")


if __name__ == "__main__":
    main()
