"""orbax checkpoints of a whole sweep (all runs' params, optimizer and env states, keys, counters).

A checkpoint is a directory `checkpoints/<updates_done>/` written by orbax, which writes into a
temporary directory and renames it only when complete, so a process killed mid-write leaves no
half checkpoint under a final name. `restore_latest` walks the complete checkpoints newest first
and falls back to an older one if the newest cannot be read (corrupted or truncated files).
Beside the arrays, `meta.json` stores the checkpoint format version and the config.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxrl.metrics import disk_errors

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (format version, or none readable)."""


class Checkpointer:
    """Save/restore sweep states under `directory`, keeping the last `keep`.

    Args:
      directory: the checkpoints directory (created if absent).
      keep: how many complete checkpoints to keep.
    """

    def __init__(self, directory: str, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False),
        )

    def steps(self) -> list[int]:
        """Complete checkpoint steps, oldest first."""
        self.manager.reload()
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any, config: dict[str, Any]) -> None:
        """Write the checkpoint for `step` (collective: call on every process)."""
        intact = f"the last complete checkpoint in {self.directory} is intact"
        with disk_errors(f"checkpoint {step}", intact):
            self.manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                meta=ocp.args.JsonSave({"format_version": FORMAT_VERSION, "config": config,
                                        "step": step}),
            ))
            self.manager.wait_until_finished()

    def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
        """Restore the newest readable checkpoint as `(step, state, meta)`, or None if none.

        `abstract_state` gives shapes, dtypes and shardings (e.g. `SweepRunner.abstract_state()`).
        Unreadable newer checkpoints are skipped with a warning.
        """
        errors = []
        for step in reversed(self.steps()):
            try:
                meta = self._meta(step)
                if meta.get("format_version") != FORMAT_VERSION:
                    raise CheckpointError(
                        f"checkpoint {step} has format version {meta.get('format_version')}, "
                        f"this code reads version {FORMAT_VERSION}"
                    )
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state)))
                state = restored["state"]
                jax.block_until_ready(state)
                return step, state, meta
            except CheckpointError:
                raise
            except Exception as e:  # noqa: BLE001 - any read failure means: try an older one
                errors.append(f"step {step}: {type(e).__name__}: {e}")
                if jax.process_index() == 0:
                    print(f"[jaxrl] checkpoint {step} unreadable, trying an older one: "
                          f"{type(e).__name__}: {str(e)[:200]}")
        if errors:
            raise CheckpointError("no readable checkpoint in " + self.directory + ": "
                                  + " | ".join(errors))
        return None

    def _meta(self, step: int) -> dict[str, Any]:
        path = os.path.join(self.directory, str(step), "meta", "metadata")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])
