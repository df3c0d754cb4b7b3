"""The bookkeeping of a training run: everything `navctl train` keeps in its --out directory.

    progress.json        the config, its digest, the rounds done and their metrics (written
                         last in a round: a round counts once this is on disk)
    model.safetensors    the policy after the last complete round (the next round trains on)
    best.safetensors     the policy of the round with the best validation success (SPL breaks
                         ties; the earlier round wins a full tie): the run's result, shipped
    data/round_K.npz     round K's labelled episodes: obs_I (T, obs_dim), act_I (T, 2) and meta
    metrics.csv          one row per round; tensorboard/ too when tensorboard is installed
    model_card.json      written at the end

Every file is written atomically, so a run killed at any moment resumes from its last
complete round.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np

from navctl.errors import UsageError
from navctl.io import atomic_path, atomic_write_json, atomic_write_text
from navctl.train_config import TrainConfig, validate_config

# One episode's observations (T, obs_dim), the teacher's labels (T, 2), (T,) bool whether the
# teacher's escape (or rescue) drove at each step (its takeovers), and (T,) float32 the seconds
# since the scenario's last event fired at each step (inf before the first).
LabelledSequence = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class RunDirectory:
    """A run directory, new or resumed; `state` is what progress.json holds."""

    def __init__(self, path: Path, cfg: TrainConfig, config_path: str, resume: bool) -> None:
        self.path = path
        config = cfg.as_dict()
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        self.state: dict[str, Any] = {"config": config, "config_digest": digest, "rounds_done": 0, "rounds": [],
                                      "wall_time_s": 0.0, "data_steps": 0}
        progress = path / "progress.json"
        if progress.exists():
            if not resume:
                raise UsageError(f"{path}: holds a training run already; pass --resume to continue it or choose another --out")
            self.state = json.loads(progress.read_text())
            if self.state["config_digest"] != digest and not _same_config(self.state["config"], cfg):
                raise UsageError(f"{path}: was trained with a different config or seed than {config_path}; cannot resume")
        (path / "data").mkdir(parents=True, exist_ok=True)
        self._board = _tensorboard(path)

    @property
    def rounds_done(self) -> int:
        return self.state["rounds_done"]

    def load_policy(self):
        """The policy saved after the last complete round."""
        import policies

        return policies.load(self.path / "model.safetensors")

    def load_data(self) -> tuple[list[LabelledSequence], list[dict[str, Any]]]:
        """The labelled episodes of every complete round, in order, and their meta dicts."""
        out: list[LabelledSequence] = []
        metas: list[dict[str, Any]] = []
        for r in range(self.rounds_done):
            with np.load(self.path / "data" / f"round_{r}.npz", allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes().decode())
                out += [(z[f"obs_{i}"], z[f"act_{i}"], _per_step(z, "takeover", i, bool, False),
                         _per_step(z, "since_event", i, np.float32, np.inf)) for i in range(len(meta))]
                metas += meta
        return out, metas

    def save_data(self, round_index: int, episodes: list[LabelledSequence], meta: list[dict[str, Any]]) -> None:
        """Round `round_index`'s labelled episodes, with a JSON-able meta dict for each."""
        arrays: dict[str, np.ndarray] = {}
        for i, (obs, labels, takeovers, since_event) in enumerate(episodes):
            arrays[f"obs_{i}"], arrays[f"act_{i}"], arrays[f"takeover_{i}"] = obs, labels, takeovers
            arrays[f"since_event_{i}"] = since_event
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with atomic_path(self.path / "data" / f"round_{round_index}.npz") as tmp:  # the temp name keeps .npz
            np.savez(tmp, **arrays)

    @property
    def best_row(self) -> Optional[dict[str, Any]]:
        """The metrics row of the round chosen on validation so far, or None before round 0 ends."""
        best = self.state.get("best_round")
        return None if best is None else self.state["rounds"][best]

    def finish_round(self, row: dict[str, Any], policy) -> None:
        """Saves the policy, then the round's metrics row (progress.json last)."""
        from policies.checkpoint import save_policy  # torch: imported only when a run saves

        with atomic_path(self.path / "model.safetensors") as tmp:
            save_policy(policy, tmp)
        if _better(row, self.best_row):
            with atomic_path(self.path / "best.safetensors") as tmp:
                shutil.copyfile(self.path / "model.safetensors", tmp)
            self.state["best_round"] = row["round"]
        self.state["rounds"].append(row)
        self.state["rounds_done"] = row["round"] + 1
        self.state["wall_time_s"] += row["seconds"]
        self.state["data_steps"] = row["data_steps"]
        atomic_write_json(self.path / "progress.json", self.state)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(self.state["rounds"])
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())
        if self._board is not None:
            for key, value in row.items():
                if key != "round":
                    self._board.add_scalar(key, value, row["round"])
            self._board.flush()

    def write_card(self, card: dict[str, Any], ship_to: Optional[Path] = None) -> None:
        """model_card.json; with `ship_to`, the chosen round's checkpoint (best.safetensors)
        and the card are copied there as NAME.*."""
        atomic_write_json(self.path / "model_card.json", card)
        if ship_to is None:
            return
        ship_to.mkdir(parents=True, exist_ok=True)
        with atomic_path(ship_to / f"{card['name']}.safetensors") as tmp:
            shutil.copyfile(self.path / "best.safetensors", tmp)
        atomic_write_json(ship_to / f"{card['name']}.json", card)

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _better(row: dict[str, Any], best: Optional[dict[str, Any]]) -> bool:
    """True when `row` validates better than `best`: higher success, then higher SPL."""
    return best is None or (row["val_success"], row["val_spl"]) > (best["val_success"], best["val_spl"])


def _same_config(stored: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether a run's stored config is `cfg` once read with today's defaults (a field added
    since the run started does not stop it from resuming)."""
    try:
        return validate_config(stored, "progress.json") == cfg
    except UsageError:
        return False


def _tensorboard(out_dir: Path):
    """A TensorBoard writer in out_dir/tensorboard when the tensorboard package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _per_step(z, name: str, i: int, dtype, missing) -> np.ndarray:
    """Episode i's per-step array `name` (takeover, since_event); data written before it was
    recorded has none: every step `missing` (no takeover, no event)."""
    key = f"{name}_{i}"
    return z[key].astype(dtype) if key in z.files else np.full(len(z[f"act_{i}"]), missing, dtype)
