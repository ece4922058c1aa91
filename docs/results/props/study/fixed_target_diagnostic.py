"""Diagnostic (not an experiment of the runtime): fixed-target sampling-error ratio, PROPS
buffer / in-loop on-policy reference, against network width and env copies, through
tests/test_props_reference.py's `runs()` (16 vmapped seeds, 6 target updates, target lr 0,
lr_PROPS 3e-3, lambda 0.1, delta 0.05, 4 behavior minibatches).

  cd <repo> && PYTHONPATH=$PWD nice -n 10 python docs/results/props/study/fixed_target_diagnostic.py
"""

import importlib.util
import pathlib

path = pathlib.Path(__file__).resolve().parents[4] / "tests" / "test_props_reference.py"
spec = importlib.util.spec_from_file_location("test_props_reference", path)
t = importlib.util.module_from_spec(spec)
spec.loader.exec_module(t)

for kw in [dict(), dict(hidden=(64, 64)), dict(num_envs=1, num_steps=256, props_num_steps=64),
           dict(num_envs=1, num_steps=256, props_num_steps=64, hidden=(64, 64))]:
    m = t.runs(lr=0.0, props_lr=3e-3, **kw)
    se, ref = m["sampling_error"][:, 1:].mean(), m["ref_sampling_error"][:, 1:].mean()
    print(kw, f"se {se:.4f} ref {ref:.4f} ratio {se / ref:.3f}", flush=True)
