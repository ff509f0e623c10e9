"""Orbax checkpoints of a vision training run (the whole state, per epoch).

The folder holds one orbax step per saved epoch and ``config.json``, the run's
configuration: resuming under a different configuration is refused, because
the run would not end where the original run ends.  Restoring goes through an
abstract target (shapes, dtypes and shardings of a freshly initialised state),
so the state comes back with the same structure and placement.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import jax


class CheckpointStore:
    """Save / restore :class:`cljax.vision_training.VisionState` with orbax."""

    def __init__(self, directory, config, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._config = asdict(config)
        config_file = self.directory / "config.json"
        if config_file.exists():
            saved = json.loads(config_file.read_text())
            if saved != json.loads(json.dumps(self._config)):
                diff = {k: (saved.get(k), v) for k, v in self._config.items() if saved.get(k) != v}
                raise ValueError(f"checkpoint_dir {self.directory} was written by another "
                                 f"configuration (saved vs now: {diff})")
        else:
            config_file.write_text(json.dumps(self._config, indent=1))
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep))
        self._ocp = ocp

    def latest_epoch(self):
        return self._manager.latest_step()

    def save(self, epoch: int, state) -> None:
        self._manager.save(epoch, args=self._ocp.args.StandardSave(state))

    def restore_latest(self, template):
        """The latest saved state, shaped and placed like ``template``; None if none."""
        self._manager.wait_until_finished()
        step = self._manager.latest_step()
        if step is None:
            return None
        abstract = jax.tree_util.tree_map(self._ocp.utils.to_shape_dtype_struct, template)
        return self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
