"""Checkpoints of a whole sweep: every real run's state, verified by a content hash.

A checkpoint is a directory `checkpoints/<updates_done>/` holding
  * `state.npz`: the flattened sweep state, one array per pytree leaf, leading axis = the REAL
    runs (lane and device padding is never stored, so a sweep resumes on any number of devices or
    processes and gives the same bits, see `jaxrl.experiment`);
  * `meta.json`: format version, the config, the update count, the tree structure, every leaf's
    shape and dtype, and the SHA-256 of `state.npz`.
It is written by one process into `checkpoints/.tmp-<step>-<pid>/`, fsynced, and renamed into
place, so a process killed mid-write leaves no half checkpoint under a final name. `restore`
walks the checkpoints newest first; one whose hash, structure or shapes do not match is reported
in one line and skipped, and the next save at that step replaces it.

Why not orbax: orbax stores sharded, padded global arrays (the padding depends on the device
count), gives no content hash, and skips re-saving a step it believes it has; a sweep state of
host-gathered NumPy arrays needs none of its machinery. Arrays are read with
`allow_pickle=False`, so no checkpoint can run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxrl.metrics import disk_errors, fsync_dir

FORMAT_VERSION = 2


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (format version, or none readable)."""


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_meta(directory: str, step: int) -> dict[str, Any]:
    """The `meta.json` of checkpoint `step` (config, step, hash); raises OSError/ValueError."""
    with open(os.path.join(directory, str(step), "meta.json")) as f:
        return json.load(f)


class Checkpointer:
    """Save/restore host (NumPy) pytrees under `directory`, keeping the last `keep`.

    Args:
      directory: the checkpoints directory (created on first save).
      keep: how many complete checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str, keep: int = 3):
        if int(keep) < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {keep}")
        self.directory = os.path.abspath(directory)
        self.keep = int(keep)

    def steps(self) -> list[int]:
        """Complete checkpoint steps (a `meta.json` exists), oldest first."""
        if not os.path.isdir(self.directory):
            return []
        out = []
        for name in os.listdir(self.directory):
            if name.isdigit() and os.path.exists(os.path.join(self.directory, name, "meta.json")):
                out.append(int(name))
        return sorted(out)

    def save(self, step: int, state: Any, config: dict[str, Any]) -> None:
        """Write checkpoint `step` from a host pytree (NumPy leaves); replaces an existing one."""
        leaves, treedef = jax.tree.flatten(state)
        leaves = [np.asarray(x) for x in leaves]
        os.makedirs(self.directory, exist_ok=True)
        tmp = os.path.join(self.directory, f".tmp-{step}-{os.getpid()}")
        final = os.path.join(self.directory, str(step))
        intact = (f"the last complete checkpoint in {self.directory} is intact"
                  if self.steps() else "")
        with disk_errors(f"checkpoint {step}", intact):
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            data = os.path.join(tmp, "state.npz")
            with open(data, "wb") as f:
                np.savez(f, **{f"leaf_{i:05d}": x for i, x in enumerate(leaves)})
                f.flush()
                os.fsync(f.fileno())
            meta = {
                "format_version": FORMAT_VERSION,
                "step": int(step),
                "config": config,
                "treedef": str(treedef),
                "shapes": [list(x.shape) for x in leaves],
                "dtypes": [str(x.dtype) for x in leaves],
                "sha256": _sha256(data),
            }
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(meta, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(tmp)
            if os.path.exists(final):  # e.g. a corrupt checkpoint we fell back past
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.directory)
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(os.path.join(self.directory, str(old)), ignore_errors=True)

    def restore(
        self, template: Any, accept: Callable[[dict[str, Any]], None] | None = None,
        log: Callable[[str], None] = print,
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest checkpoint that verifies, as `(step, host state, meta)`; None if none exist.

        Args:
          template: a pytree with the expected structure; leaves have `.shape` and `.dtype`
            (e.g. from `jax.eval_shape`), leading axis the real runs.
          accept: called with the newest checkpoint's meta BEFORE any array is read (e.g. to
            compare configs); whatever it raises propagates.
          log: where the one-line fallback messages go.

        Raises:
          CheckpointError: checkpoints exist but none verifies.
        """
        steps = self.steps()
        if not steps:
            return None
        t_leaves, t_def = jax.tree.flatten(template)
        errors = []
        for n, step in enumerate(reversed(steps)):
            try:
                meta = read_meta(self.directory, step)
            except (OSError, ValueError) as e:
                errors.append(f"step {step}: meta.json unreadable ({e})")
                log(f"[jaxrl] checkpoint {step} unreadable (meta.json), trying an older one")
                continue
            if meta.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(
                    f"checkpoint {step} has format version {meta.get('format_version')}, this "
                    f"code reads version {FORMAT_VERSION}; use a new --workdir")
            if n == 0 and accept is not None:
                accept(meta)
            try:
                state = self._read(step, meta, t_leaves, t_def)
            except (OSError, ValueError, KeyError) as e:
                errors.append(f"step {step}: {e}")
                log(f"[jaxrl] checkpoint {step} rejected ({e}); trying an older one")
                continue
            return step, state, meta
        raise CheckpointError(f"no readable checkpoint in {self.directory}: " + " | ".join(errors))

    def _read(self, step: int, meta: dict[str, Any], t_leaves: list[Any], t_def: Any) -> Any:
        data = os.path.join(self.directory, str(step), "state.npz")
        digest = _sha256(data)
        if digest != meta.get("sha256"):
            raise ValueError("content hash mismatch (file corrupted)")
        if meta.get("treedef") != str(t_def):
            raise ValueError("state structure differs from this code's")
        with np.load(data, allow_pickle=False) as z:
            leaves = [z[f"leaf_{i:05d}"] for i in range(len(t_leaves))]
        for i, (x, t) in enumerate(zip(leaves, t_leaves, strict=True)):
            if tuple(x.shape) != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
                raise ValueError(f"leaf {i} is {x.dtype}{list(x.shape)}, expected "
                                 f"{np.dtype(t.dtype)}{list(t.shape)}")
        return jax.tree.unflatten(t_def, leaves)
