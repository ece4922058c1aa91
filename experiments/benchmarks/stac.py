"""Throughput of our SAC-family code: gradient updates/s summed over vmapped seeds, Pendulum-v1.

  python -m experiments.benchmarks.stac --impl=ours_rejaxcfg   # our twin SAC, rejax's config
  /work/venv-rejax/bin/python -m experiments.benchmarks.stac --impl=rejax   # rejax SAC itself
  python -m experiments.benchmarks.stac --impl=stac256   # STAC, paper networks (2x256 LN)
  python -m experiments.benchmarks.stac --impl=sac256    # twin SAC, the same networks
  python -m experiments.benchmarks.stac --impl=ours_rejaxcfg --steps=456 --profile=/tmp/prof
      # op-level profile of the jitted update: time per category (GEMM, activations, RNG, ...)

rejax must live in its own venv (rejax 0.1.3 needs gymnax 0.0.9; see RESULTS_stac.md). Each run
prints one JSON line: the time of the first call (compile + run), of a second call (run only,
with `--repeat=2`), updates/s summed over seeds from the run-only time, and the final evaluation
return (mean over seeds). rejax's shipped Pendulum SAC config (configs/gymnax/pendulum.yaml):
1 env, buffer 10k, fill 256, batch 256, lr 0.01, polyak 0.98, swish 64x64, twin critics, 10k
steps; we set its `eval_freq` to the run length so evaluation is not timed (its every-100-steps
evaluation costs about 10%).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import time

REJAX_CFG = dict(
    env="Pendulum-v1", agent_kwargs={"activation": "swish"}, num_envs=1, buffer_size=10_000,
    fill_buffer=256, batch_size=256, learning_rate=0.01, num_epochs=1, gamma=0.99, polyak=0.98,
    target_entropy_ratio=None, normalize_observations=True,
)


def _time_calls(fn, args, repeat):
    import jax

    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return times, out


def run_rejax(seeds: int, steps: int, repeat: int) -> dict:
    import jax
    import numpy as np
    import rejax

    algo = rejax.get_algo("sac").create(**REJAX_CFG, total_timesteps=steps, eval_freq=steps)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    train = jax.jit(jax.vmap(algo.train))
    times, (ts, (lengths, returns)) = _time_calls(train, (keys,), repeat)
    last = np.asarray(returns)[:, -1]  # the final evaluation, per seed
    per_seed = last.reshape(seeds, -1).mean(axis=1)
    return {"updates": steps - REJAX_CFG["fill_buffer"], "times": times,
            "final_return": float(np.mean(last)), "per_seed": per_seed.tolist()}


def _ours(cfg_kwargs: dict, seeds: int, repeat: int) -> dict:
    import jax
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxrl import sweep
    from jaxrl.stac import STACConfig, evaluate, make_learner, make_stac

    cfg = STACConfig(**cfg_kwargs)
    algo, L = make_stac(cfg), make_learner(cfg)
    # The whole run as ONE jitted scan (`sweep.make_train`, no host loop), seeds vmapped and
    # sharded over every device (one device: plain jit(vmap)); with JAXRL_CPU_DEVICES /
    # --cpu_devices the cores of a CPU host are devices. (`jaxrl.experiment.run` instead runs
    # fixed-width lanes per device, chunk by chunk; this measures the update's throughput.)
    sharding = NamedSharding(sweep.make_mesh(), P("runs"))
    if seeds % sharding.mesh.devices.size:
        raise SystemExit(f"--seeds={seeds} must be a multiple of the {sharding.mesh.devices.size} "
                         "devices")
    keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), seeds), sharding)
    train = jax.jit(jax.vmap(sweep.make_train(algo)), in_shardings=sharding,
                    out_shardings=sharding)
    times, (state, _) = _time_calls(train, (keys,), repeat)
    ev = jax.jit(jax.vmap(lambda s, k: evaluate(L, s, k, 8)["return"]))(
        state, jax.random.split(jax.random.PRNGKey(1), seeds))
    return {"updates": algo.num_updates, "times": times, "final_return": float(np.mean(ev)),
            "per_seed": np.asarray(ev).tolist()}


# Our twin SAC with rejax's Pendulum configuration (no observation normalisation).
OURS_REJAXCFG = dict(
    variant="sac", warmup_steps=256, buffer_size=10_000, batch_size=256, actor_hidden=(64, 64),
    critic_hidden=(64, 64), activation="swish", layer_norm=False, use_dropout=False,
    actor_lr=0.01, critic_lr=0.01, alpha_lr=0.01, alpha_update="adam", tau=0.02, gamma=0.99,
    alpha_init=1.0, actor_dropout=0.0, critic_dropout=0.0)


def run_ours_rejaxcfg(seeds: int, steps: int, repeat: int) -> dict:
    """Our twin SAC with rejax's Pendulum configuration (no observation normalisation)."""
    return _ours({**OURS_REJAXCFG, "total_env_steps": steps}, seeds, repeat)


# Op-level profile categories, matched against each XLA op's name and its jax `op_name` metadata.
_CATEGORIES = (
    ("RNG (threefry)", r"threefry|random_bits|bernoulli|_uniform|_randint|_normal|random_split"
                       r"|random_wrap|random_unwrap|fold_in"),
    ("GEMM (dot / ynn_fusion)", r"^(ynn_fusion|dot)"),
    ("LayerNorm", r"LayerNorm"),
    ("activations / dropout apply", r"silu|swish|relu|Dropout|dropout|tanh"),
    ("copies / transposes", r"^copy|/transpose$"),
    ("other elementwise (optimizer, losses, env, replay)", r"."),
)


def profile_ours(cfg_kwargs: dict, seeds: int, trace_dir: str) -> dict:
    """Trace one call of the jitted vmapped train (after a warm-up call) with XLA:CPU's per-op
    TraceMe events; return exclusive milliseconds per op category (see `_CATEGORIES`)."""
    import jax

    from jaxrl import sweep
    from jaxrl.stac import STACConfig, make_stac

    algo = make_stac(STACConfig(**cfg_kwargs))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    train = jax.jit(jax.vmap(sweep.make_train(algo)))
    meta = {}
    for line in train.lower(keys).compile().as_text().splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*?op_name=\"([^\"]*)\"", line)
        if m:
            meta.setdefault(m.group(1), m.group(2))
    jax.block_until_ready(train(keys))
    jax.profiler.start_trace(trace_dir)
    t = time.perf_counter()
    jax.block_until_ready(train(keys))
    wall = time.perf_counter() - t
    jax.profiler.stop_trace()
    fn = sorted(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True))[-1]
    events = [e for e in json.load(gzip.open(fn))["traceEvents"] if e.get("ph") == "X"
              and not e["name"].startswith(("ThunkExecutor", "$", "block_until"))]
    by_thread, excl = collections.defaultdict(list), collections.Counter()
    for e in events:
        by_thread[(e["pid"], e["tid"])].append(e)
    for evs in by_thread.values():  # exclusive time: subtract nested events (while bodies)
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                excl[id(stack[-1])] -= e["dur"]
            excl[id(e)] += e["dur"]
            stack.append(e)
    cat = collections.Counter()
    for e in events:
        name = e["name"].replace("end: ", "")
        text = name + " " + meta.get(name, "")
        label = next(c for c, pat in _CATEGORIES if re.search(pat, text))
        cat[label] += excl[id(e)] / 1e3
    total = sum(cat.values())
    return {"wall_ms": round(1e3 * wall, 1), "ops_ms": round(total, 1),
            "per_update_ms": round(1e3 * wall / algo.num_updates, 3),
            "share": {k: round(v / total, 3) for k, v in cat.most_common()}}


def _paper_nets(variant: str, steps: int) -> dict:
    return dict(variant=variant, total_env_steps=steps, warmup_steps=256, buffer_size=10_000,
                batch_size=256, actor_hidden=(256, 256), critic_hidden=(256, 256),
                layer_norm=True, use_dropout=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", required=True,
                   choices=["ours_rejaxcfg", "rejax", "stac256", "sac256"])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--profile", default="", help="trace dir: print an op-level profile instead")
    p.add_argument("--cpu_devices", default="1",
                   help="XLA CPU devices to shard the seeds over ('auto': one per core); ours only")
    a = p.parse_args()
    if a.seeds < 1 or a.steps < 300 or a.repeat < 1:
        raise SystemExit(f"--seeds >= 1, --steps >= 300, --repeat >= 1; got {vars(a)}")
    if a.profile:
        if a.impl == "rejax":
            raise SystemExit("--profile profiles our code only")
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = flags + " --xla_cpu_enable_xprof_traceme=true"  # before jax
        kw = (OURS_REJAXCFG if a.impl == "ours_rejaxcfg"
              else _paper_nets("stac" if a.impl == "stac256" else "sac", a.steps))
        kw = {**kw, "total_env_steps": a.steps}
        print(json.dumps({"impl": a.impl, "seeds": a.seeds, "xla_flags": flags,
                          **profile_ours(kw, a.seeds, a.profile)}))
        return
    t0 = time.perf_counter()
    if a.impl != "rejax":
        from jaxrl.distributed import configure_cpu_devices

        configure_cpu_devices(a.cpu_devices)
    if a.impl == "rejax":
        r = run_rejax(a.seeds, a.steps, a.repeat)
    elif a.impl == "ours_rejaxcfg":
        r = run_ours_rejaxcfg(a.seeds, a.steps, a.repeat)
    else:
        r = _ours(_paper_nets("stac" if a.impl == "stac256" else "sac", a.steps), a.seeds,
                  a.repeat)
    run_s = r["times"][-1] if a.repeat > 1 else None
    import jax

    print(json.dumps({
        "impl": a.impl, "seeds": a.seeds, "devices": jax.device_count(),
        "updates_per_seed": r["updates"],
        "first_call_s": round(r["times"][0], 2), "run_only_s": run_s and round(run_s, 2),
        "updates_per_s_summed": run_s and round(r["updates"] * a.seeds / run_s, 1),
        "updates_per_s_incl_compile": round(r["updates"] * a.seeds / r["times"][0], 1),
        "final_return": round(r["final_return"], 1),
        "final_return_per_seed": [round(float(x), 2) for x in r.get("per_seed", [])],
        "process_s": round(time.perf_counter() - t0, 2),
    }))


if __name__ == "__main__":
    main()
