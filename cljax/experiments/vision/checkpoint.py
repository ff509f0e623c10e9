"""Orbax checkpoints of a vision training run (the whole state, per epoch).

The folder holds one orbax step per saved epoch and ``config.json``, the run's
configuration.  Resuming is allowed only where the run would end where an
uninterrupted run of the new configuration ends: every field equal, except
``epochs``, which may grow (training then continues from the latest epoch; the
per-epoch histories are extended).  Anything else is refused, naming the
fields.  Restoring goes through an abstract target (shapes, dtypes and
shardings of a freshly initialised state), so the state comes back with the
same structure and placement.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HISTORY_FIELDS = ("loss_history", "constraint_history", "dual_history")


def config_differences(saved: dict, now: dict, growable=("epochs",)) -> dict:
    """``{field: (saved, now)}`` of the fields that make ``saved`` incompatible with ``now``.

    A field in ``growable`` may be larger now than it was (more epochs continue a run);
    every other field must be equal.
    """
    diff = {}
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if old == new:
            continue
        if key in growable and isinstance(old, int) and isinstance(new, int) and new > old:
            continue
        diff[key] = (old, new)
    return diff


def describe_differences(diff: dict) -> str:
    """``field: saved -> now`` pairs, comma separated (for error messages)."""
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in diff.items())


class CheckpointStore:
    """Save / restore :class:`cljax.experiments.vision.training.VisionState` with orbax."""

    def __init__(self, directory, config, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self.directory = Path(directory).absolute()
        self._config = json.loads(json.dumps(asdict(config)))
        config_file = self.directory / "config.json"
        self.saved_config = None
        if config_file.exists():
            self.saved_config = json.loads(config_file.read_text())
            diff = config_differences(self.saved_config, self._config)
            if diff:
                raise ValueError(f"checkpoint_dir {self.directory} was written by another "
                                 f"configuration (saved -> now: {describe_differences(diff)})")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep),
            item_handlers=ocp.StandardCheckpointHandler())  # so that item_metadata is read
        self._ocp = ocp
        latest = self._manager.latest_step()
        if latest is not None and latest > self._config["epochs"]:
            raise ValueError(f"checkpoint_dir {self.directory} holds epoch {latest}, more than "
                             f"epochs={self._config['epochs']}")
        if self.saved_config != self._config:
            config_file.write_text(json.dumps(self._config, indent=1))

    def latest_epoch(self):
        return self._manager.latest_step()

    def save(self, epoch: int, state) -> None:
        self._manager.save(epoch, args=self._ocp.args.StandardSave(state))

    def restore_latest(self, template):
        """The latest saved state, shaped and placed like ``template``; None if none.

        The per-epoch histories are restored at their saved length and padded with
        zeros to the template's (a run continued with more epochs).
        """
        self._manager.wait_until_finished()
        step = self._manager.latest_step()
        if step is None:
            return None
        abstract = jax.tree_util.tree_map(self._ocp.utils.to_shape_dtype_struct, template)
        saved_epochs = self._saved_history_length(step)
        epochs = template.loss_history.shape[0]
        if saved_epochs != epochs:
            abstract = abstract._replace(**{
                name: jax.ShapeDtypeStruct((saved_epochs,) + getattr(template, name).shape[1:],
                                           getattr(template, name).dtype,
                                           sharding=getattr(abstract, name).sharding)
                for name in HISTORY_FIELDS})
        state = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
        if saved_epochs != epochs:
            padded = {}
            for name in HISTORY_FIELDS:
                history = np.zeros(getattr(template, name).shape, getattr(template, name).dtype)
                history[:saved_epochs] = np.asarray(getattr(state, name))
                padded[name] = jax.device_put(history, getattr(template, name).sharding)
            state = state._replace(**padded)
        # orbax returns arrays committed to a device; a template leaf made by a jitted init
        # is not, and jit compiles again for committed arguments: match the template
        return jax.tree_util.tree_map(
            lambda leaf, like: leaf if getattr(like, "committed", True)
            else jnp.asarray(np.asarray(leaf)), state, template)

    def _saved_history_length(self, step) -> int:
        """Epochs of the histories stored at ``step`` (the config of the run that saved it)."""
        tree = self._manager.item_metadata(step).tree
        return int(tree["loss_history"].shape[0])

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
