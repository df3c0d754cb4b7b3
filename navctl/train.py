"""`navctl train`: imitation of the privileged expert with DAgger, then truncated BPTT.

Round 0: the expert drives `dagger.expert_episodes` randomised episodes of the train split.
Rounds 1..R: the student drives, the expert takes over a step with probability beta
(decaying every round), and every observation is labelled with the expert's action. After
every round the student is trained on all data so far by truncated backpropagation through
time: episodes run in parallel batches, cut into chunks of `optim.chunk_steps`, with the
hidden state and the plastic traces carried from chunk to chunk, so the plasticity rule
(alpha, eta, decay, modulator) is meta-learned. Then the closed-loop success rate on the
validation scenarios (seeds disjoint from the training seeds) is measured.

Everything a run needs to resume is in --out after every round, written atomically:
model.safetensors (the policy), data/round_K.npz, progress.json. A killed run restarted
with --resume continues from the last complete round and ends with the same weights as an
uninterrupted one, because every round re-seeds all of its randomness from (seed, round).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from navctl.dagger import Collector, EpisodeData, EpisodeJob
from navctl.errors import UsageError
from navctl.io import atomic_path, atomic_write_json, atomic_write_text
from navctl.train_config import load_config, scenario_names

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "policies" / "checkpoints"
VALIDATION_SEED_OFFSET = 1_000_000  # validation seeds never collide with training seeds


# --- observation mirroring (left <-> right), doubling the data and covering both sides ------
def _mirror_index() -> tuple[np.ndarray, np.ndarray]:
    """Permutation and sign that mirror an observation across the robot's x-z plane."""
    from envs.sensors import LIDAR_RAYS, OBS_DIM, OBS_LAYOUT

    perm, sign = np.arange(OBS_DIM), np.ones(OBS_DIM, dtype=np.float32)
    lay = {k: s.start for k, s in OBS_LAYOUT.items()}
    sign[lay["goal_bearing"]] = -1  # sin of the bearing
    sign[lay["lin_vel"] + 1] = -1  # lateral velocity
    sign[lay["ang_vel"] + 0] = -1  # roll rate
    sign[lay["ang_vel"] + 2] = -1  # yaw rate
    sign[lay["roll_pitch"]] = -1  # roll
    w = lay["wheel_speeds"]
    perm[w:w + 4] = [w + 1, w, w + 3, w + 2]  # FL FR RL RR -> FR FL RR RL
    sign[lay["prev_action"] + 1] = -1  # yaw-rate command
    l0 = lay["lidar"]
    perm[l0:l0 + LIDAR_RAYS] = l0 + (-np.arange(LIDAR_RAYS)) % LIDAR_RAYS  # ray at +a <- ray at -a
    return perm, sign


def mirror(obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same episode seen in a mirror: observations (T, obs_dim) and actions (T, 2)."""
    perm, sign = _mirror_index()
    return obs[:, perm] * sign, actions * np.array([1.0, -1.0], dtype=np.float32)


# --- the training step ---------------------------------------------------------------------
def _sequences(episodes: list[EpisodeData], mirrored: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    seqs = [(e.obs, e.expert_actions) for e in episodes]
    if mirrored:
        seqs += [mirror(e.obs, e.expert_actions) for e in episodes]
    return seqs


def fit(policy, episodes: list[EpisodeData], optim_cfg: dict, mirrored: bool, seed: int,
        progress=None) -> float:
    """Trains `policy` on all episodes by truncated BPTT; returns the last epoch's mean loss."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    seqs = _sequences(episodes, mirrored)
    dt = 1.0 / 20  # s, the env's control period
    b, chunk = optim_cfg["batch_episodes"], optim_cfg["chunk_steps"]
    net = policy.net
    opt = torch.optim.Adam(net.parameters(), lr=optim_cfg["lr"])
    net.train()
    epoch_loss = math.nan
    for epoch in range(optim_cfg["epochs"]):
        # cosine annealing, one value per epoch: big steps while far off, small ones to settle
        lr = optim_cfg["lr_min"] + (optim_cfg["lr"] - optim_cfg["lr_min"]) * 0.5 * (1.0 + math.cos(math.pi * epoch / optim_cfg["epochs"]))
        for group in opt.param_groups:
            group["lr"] = lr
        order = rng.permutation(len(seqs))
        # batches of similar length waste less time on padding: sort within windows of 4 batches
        windows = [sorted(order[i:i + 4 * b], key=lambda k: len(seqs[k][0])) for i in range(0, len(order), 4 * b)]
        batches = [w[i:i + b] for w in windows for i in range(0, len(w), b)]
        rng.shuffle(batches)
        total, count = 0.0, 0
        for batch in batches:
            lengths = [len(seqs[k][0]) for k in batch]
            t_max = max(lengths)
            obs = np.zeros((len(batch), t_max, seqs[batch[0]][0].shape[1]), np.float32)
            act = np.zeros((len(batch), t_max, 2), np.float32)
            mask = np.zeros((len(batch), t_max), np.float32)
            for j, k in enumerate(batch):
                obs[j, :lengths[j]], act[j, :lengths[j]], mask[j, :lengths[j]] = seqs[k][0], seqs[k][1], 1.0
            obs_t, act_t, mask_t = torch.from_numpy(obs), torch.from_numpy(act), torch.from_numpy(mask)
            dt_t = torch.full((len(batch), chunk), dt)
            state = None
            for t0 in range(0, t_max, chunk):
                t1 = min(t0 + chunk, t_max)
                pred, state = policy.train_forward(obs_t[:, t0:t1], dt_t[:, :t1 - t0], state)
                m = mask_t[:, t0:t1]
                loss = (((pred - act_t[:, t0:t1]) ** 2).sum(-1) * m).sum() / m.sum().clamp(min=1.0)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), optim_cfg["grad_clip"])
                opt.step()
                state = tuple(s.detach() for s in state)
                total += float(loss.detach()) * float(m.sum())
                count += float(m.sum())
        epoch_loss = total / max(count, 1.0)
        if progress is not None:
            progress.set_postfix_str(f"epoch {epoch + 1}/{optim_cfg['epochs']} loss {epoch_loss:.4f}")
    net.eval()
    return epoch_loss


def set_normalization(policy, episodes: list[EpisodeData], mirrored: bool) -> None:
    """Observation mean and std from data (std floored so constant inputs stay finite)."""
    import torch

    obs = np.concatenate([s[0] for s in _sequences(episodes, mirrored)])
    with torch.no_grad():
        policy.net.obs_mean.copy_(torch.from_numpy(obs.mean(0)))
        policy.net.obs_std.copy_(torch.from_numpy(np.maximum(obs.std(0), 1e-2)))


# --- a run ----------------------------------------------------------------------------------
def _weights(policy) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in policy.net.state_dict().items()}


def _digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(weights):
        h.update(k.encode())
        h.update(np.ascontiguousarray(weights[k]).tobytes())
    return h.hexdigest()[:16]


def _beta(cfg: dict, round_index: int) -> float:
    if round_index == 0:
        return 1.0
    return cfg["dagger"]["beta_start"] * cfg["dagger"]["beta_decay"] ** (round_index - 1)


def _jobs(cfg: dict, round_index: int, train: list[str], policy) -> list[EpisodeJob]:
    count = cfg["dagger"]["expert_episodes"] if round_index == 0 else cfg["dagger"]["episodes_per_round"]
    rng = np.random.default_rng([cfg["seed"], round_index])
    weights = None if round_index == 0 else _weights(policy)
    max_steps = int(cfg["dagger"]["max_episode_s"] * 20) or None
    jobs = []
    for i in range(count):
        jobs.append(EpisodeJob(
            scenario=train[i % len(train)],
            seed=int(rng.integers(0, VALIDATION_SEED_OFFSET)),
            beta=_beta(cfg, round_index),
            mix_seed=int(rng.integers(0, 2**31)),
            policy_config=None if weights is None else cfg["policy"],
            weights=weights,
            weights_id="" if weights is None else _digest(weights),
            max_steps=max_steps,
        ))
    return jobs


def _validation_jobs(cfg: dict, policy, round_index: int) -> list[EpisodeJob]:
    weights = _weights(policy)
    names = scenario_names(cfg["scenarios"]["validation"])
    return [EpisodeJob(scenario=name, seed=VALIDATION_SEED_OFFSET + 1000 * k + i, beta=0.0, mix_seed=0,
                       policy_config=cfg["policy"], weights=weights, weights_id=_digest(weights))
            for i, name in enumerate(names) for k in range(cfg["scenarios"]["validation_episodes"])]


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _save_data(path: Path, episodes: list[EpisodeData]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, e in enumerate(episodes):
        arrays[f"obs_{i}"] = e.obs
        arrays[f"act_{i}"] = e.expert_actions
    meta = [{"scenario": e.scenario, "seed": e.seed, "success": e.success, "spl": e.spl,
             "termination": e.termination} for e in episodes]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:  # the temp name keeps .npz, so savez writes exactly there
        np.savez(tmp, **arrays)


def _load_data(path: Path) -> list[EpisodeData]:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        return [EpisodeData(m["scenario"], m["seed"], z[f"obs_{i}"], z[f"act_{i}"], m["success"], m["spl"],
                            m["termination"]) for i, m in enumerate(meta)]


def train(config_path: str, out: Optional[str] = None, resume: bool = False, seed: Optional[int] = None,
          ship: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Runs (or resumes) a training run; returns the model card."""
    import policies
    import torch
    from tqdm import tqdm

    cfg = load_config(config_path)
    if seed is not None:
        cfg["seed"] = seed
    torch.set_num_threads(cfg["torch_threads"])
    out_dir = Path(out or f"runs/train-{cfg['name']}-seed{cfg['seed']}")
    progress_file = out_dir / "progress.json"
    cfg_digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    state: dict[str, Any] = {"config": cfg, "config_digest": cfg_digest, "rounds_done": 0, "rounds": [],
                             "wall_time_s": 0.0, "data_steps": 0}
    if progress_file.exists():
        if not resume:
            raise UsageError(f"{out_dir}: holds a training run already; pass --resume to continue it or choose another --out")
        state = json.loads(progress_file.read_text())
        if state["config_digest"] != cfg_digest:
            raise UsageError(f"{out_dir}: was trained with a different config or seed than {config_path}; cannot resume")
    (out_dir / "data").mkdir(parents=True, exist_ok=True)

    policy = policies.build(cfg["policy"])
    if state["rounds_done"] > 0:
        policy = policies.load(out_dir / "model.safetensors")
    episodes: list[EpisodeData] = []
    for r in range(state["rounds_done"]):
        episodes += _load_data(out_dir / "data" / f"round_{r}.npz")

    train_names = scenario_names(cfg["scenarios"]["train"])
    total_rounds = 1 + cfg["dagger"]["rounds"]
    collector = Collector(cfg["workers"], cfg["torch_threads"])
    metrics_csv = out_dir / "metrics.csv"
    board = _tensorboard(out_dir)
    try:
        bar = tqdm(range(state["rounds_done"], total_rounds), initial=state["rounds_done"], total=total_rounds,
                   desc=f"train {cfg['name']}", unit="round", disable=not show_progress, dynamic_ncols=True)
        for r in bar:
            started = time.perf_counter()
            bar.set_postfix_str(f"round {r}: collecting (beta {_beta(cfg, r):.2f})")
            new = list(collector.run(_jobs(cfg, r, train_names, policy)))
            _save_data(out_dir / "data" / f"round_{r}.npz", new)
            episodes += new
            if r == 0:
                set_normalization(policy, episodes, cfg["dagger"]["mirror"])
            bar.set_postfix_str(f"round {r}: training")
            loss = fit(policy, episodes, cfg["optim"], cfg["dagger"]["mirror"], seed=cfg["seed"] * 1000 + r,
                       progress=bar)
            bar.set_postfix_str(f"round {r}: validating")
            val = list(collector.run(_validation_jobs(cfg, policy, r)))
            row = {
                "round": r,
                "beta": _beta(cfg, r),
                "episodes": len(episodes),
                "data_steps": int(sum(len(e.obs) for e in episodes)),
                "loss": loss,
                "round_success": float(np.mean([e.success for e in new])),
                "val_success": float(np.mean([e.success for e in val])),
                "val_spl": float(np.mean([e.spl for e in val])),
                "seconds": time.perf_counter() - started,
            }
            with atomic_path(out_dir / "model.safetensors") as tmp:
                __import__("policies.checkpoint").checkpoint.save_policy(policy, tmp)
            state["rounds"].append(row)
            state["rounds_done"] = r + 1
            state["wall_time_s"] += row["seconds"]
            state["data_steps"] = row["data_steps"]
            atomic_write_json(progress_file, state)  # last: a round counts once this is on disk
            _write_metrics_csv(metrics_csv, state["rounds"])
            if board is not None:
                for key in ("loss", "round_success", "val_success", "val_spl"):
                    board.add_scalar(key, row[key], r)
                board.flush()
            bar.set_postfix_str(f"round {r}: loss {loss:.4f} val success {row['val_success']:.2f}")
        bar.close()
    finally:
        collector.close()
        if board is not None:
            board.close()

    card = model_card(cfg, config_path, state, policy)
    atomic_write_json(out_dir / "model_card.json", card)
    if ship:
        CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
        with atomic_path(CHECKPOINT_DIR / f"{cfg['name']}.safetensors") as tmp:
            shutil.copyfile(out_dir / "model.safetensors", tmp)
        atomic_write_json(CHECKPOINT_DIR / f"{cfg['name']}.json", card)
    return card


def _tensorboard(out_dir: Path):
    """A TensorBoard writer in out_dir/tensorboard when the tensorboard package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _write_metrics_csv(path: Path, rows: list[dict]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def model_card(cfg: dict, config_path: str, state: dict, policy) -> dict[str, Any]:
    import torch

    last = state["rounds"][-1] if state["rounds"] else {}
    return {
        "name": cfg["name"],
        "config_file": os.fspath(config_path),
        "config": cfg,
        "seed": cfg["seed"],
        "git_commit": _git_commit(),
        "data_steps": state["data_steps"],
        "episodes": last.get("episodes", 0),
        "training_wall_time_s": round(state["wall_time_s"], 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "torch": torch.__version__},
        "num_parameters": policy.num_parameters,
        "validation": {"success_rate": last.get("val_success"), "spl": last.get("val_spl"),
                       "scenarios": scenario_names(cfg["scenarios"]["validation"]),
                       "episodes_per_scenario": cfg["scenarios"]["validation_episodes"]},
        "rounds": state["rounds"],
        "command": f"navctl train --config {config_path} --seed {cfg['seed']}",
    }


# --- command line -----------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (see configs/)")
    parser.add_argument("--out", help="run directory (default runs/train-NAME-seedS)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete round")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--ship", action="store_true",
                        help="copy the final checkpoint and model card into policies/checkpoints/NAME.*")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    card = train(args.config, args.out, args.resume, args.seed, args.ship, show_progress=not args.no_progress)
    v = card["validation"]
    print(f"{card['name']}: validation success {v['success_rate']:.2f}, SPL {v['spl']:.2f}, "
          f"{card['data_steps']} data steps, {card['training_wall_time_s']:.0f} s")
    return 0
