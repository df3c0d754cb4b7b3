"""`navctl train`: imitation of the privileged expert with DAgger, then truncated BPTT.

Round 0: the expert drives `dagger.expert_episodes` randomised episodes of the train split
(with `procedural-train` among the training scenarios, `scenarios.procedural_share` of every
round's episodes each run a new generated scenario of the procedural train split).
Rounds 1..R: the student drives, the expert takes over a step with probability beta
(decaying every round), and every observation is labelled with the expert's action. After
every round the student is trained on all data so far by truncated backpropagation through
time: episodes run in parallel batches, cut into chunks of `optim.chunk_steps`, with the
hidden state and the plastic traces carried from chunk to chunk, so the plasticity rule
(alpha, eta, decay, modulator) is meta-learned. Then the closed-loop success rate on the
validation scenarios (seeds disjoint from the training seeds) is measured.

Episodes run through navctl.backends like evaluation's (local processes or Ray; the same
data either way). Every round's collection, fitting and validation times are logged.
Everything a run needs to resume is in --out after every round (navctl.run_directory): a
killed run restarted with --resume continues from the last complete round and ends with
the same weights as an uninterrupted one, because every round re-seeds all of its
randomness from (seed, round).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from envs.terrain_nav import TerrainNavEnv
from navctl.backends import BACKENDS, Executor
from navctl.episode import Task
from navctl.errors import UsageError
from navctl.metrics import spl
from navctl.policy_names import PolicyWeights
from navctl.rollout import Trajectory
from navctl.run_directory import LabelledSequence, RunDirectory
from navctl.scenario_sets import SEED_LIMIT, ProceduralSet, Source, env_seed, load_one
from navctl.train_config import (
    Optim, TrainConfig, first_procedural_index, has_procedural, load_config, procedural_episodes, scenario_names,
)

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "policies" / "checkpoints"
CONTROL_DT_S = 1.0 / TerrainNavEnv.control_hz  # s, one control step of the env (and of the policy)
VALIDATION_SEED_OFFSET = 1_000_000  # validation seeds never collide with training seeds


def train(config_path: str, out: Optional[str] = None, resume: bool = False, seed: Optional[int] = None,
          ship: bool = False, show_progress: bool = True, backend: str = "local",
          ray_address: Optional[str] = None) -> dict[str, Any]:
    """Runs (or resumes) a training run; returns the model card."""
    import policies
    import torch
    from tqdm import tqdm

    cfg = load_config(config_path)
    cfg = cfg if seed is None else dataclasses.replace(cfg, seed=seed)
    torch.set_num_threads(cfg.torch_threads)
    run = RunDirectory(Path(out or f"runs/train-{cfg.name}-seed{cfg.seed}"), cfg, config_path, resume)
    policy = run.load_policy() if run.rounds_done else policies.build({"dt": CONTROL_DT_S, **cfg.policy})
    data, metas = run.load_data()
    sequences = training_sequences(policy, data, cfg.dagger.mirror)  # what fit() trains on
    seen = {m["scenario"]: m.get("scenario_seed") is not None for m in metas}  # trained on: name -> drawn by the env
    train_scenarios = [load_one(name) for name in scenario_names(cfg.scenarios.train)]
    rounds = 1 + cfg.dagger.rounds
    bar = tqdm(range(run.rounds_done, rounds), initial=run.rounds_done, total=rounds, desc=f"train {cfg.name}",
               unit="round", disable=not show_progress, dynamic_ncols=True)
    with Executor(backend, cfg.workers or None, ray_address) as executor, run:
        for r in bar:
            clock = _Clock()
            # 1. Collect: the expert drives (round 0), or the student with the expert taking over.
            bar.set_postfix_str(f"round {r}: collecting (beta {_beta(cfg, r):.2f})")
            new = run_episodes(executor, _collection_tasks(cfg, r, train_scenarios, policy))
            episodes = [labelled(t) for t in new]
            run.save_data(r, episodes, [_meta(t) for t in new])
            data += episodes
            sequences += training_sequences(policy, episodes, cfg.dagger.mirror)
            seen.update((t.scenario, t.scenario_seed is not None) for t in new)
            collect_s = clock.lap()
            # 2. Fit the student on all the data so far.
            bar.set_postfix_str(f"round {r}: fitting")
            torch.set_num_threads(cfg.torch_threads)  # an episode run in this process set it to one
            if r == 0:
                set_normalization(policy, sequences)
            loss = fit(policy, sequences, cfg.optim, seed=cfg.seed * 1000 + r, progress=bar)
            fit_s = clock.lap()
            # 3. Validate in closed loop.
            bar.set_postfix_str(f"round {r}: validating")
            val = run_episodes(executor, _validation_tasks(cfg, policy))
            validate_s = clock.lap()
            row = {"round": r, "beta": _beta(cfg, r), **_data_counts(data, seen), "loss": loss,
                   "round_success": float(np.mean([t.success for t in new])),
                   "val_success": float(np.mean([t.success for t in val])),
                   "val_spl": float(np.mean([spl(t) for t in val])),
                   "collect_s": collect_s, "fit_s": fit_s, "validate_s": validate_s, "seconds": clock.total()}
            run.finish_round(row, policy)
            bar.set_postfix_str(f"round {r}: loss {loss:.4f} val success {row['val_success']:.2f} "
                                f"(collect {collect_s:.0f} s, fit {fit_s:.0f} s, validate {validate_s:.0f} s)")
    bar.close()
    card = model_card(cfg, config_path, run.state, policy)
    run.write_card(card, ship_to=CHECKPOINT_DIR if ship else None)
    return card


def _data_counts(data: list[LabelledSequence], seen: dict[str, bool]) -> dict[str, int]:
    """What the student has been trained on so far: episodes, steps (before mirroring),
    distinct scenarios, and how many of those were generated (procedural)."""
    return {"episodes": len(data), "data_steps": int(sum(len(episode[0]) for episode in data)),
            "distinct_scenarios": len(seen), "procedural_scenarios": sum(seen.values())}


class _Clock:
    """Wall-clock laps (s) of one round."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the last lap (or the start)."""
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return seconds

    def total(self) -> float:
        return time.perf_counter() - self.start


# --- the episodes --------------------------------------------------------------------------
def _beta(cfg: TrainConfig, round_index: int) -> float:
    """The probability that the expert drives a step in round `round_index`."""
    if round_index == 0:
        return 1.0
    return cfg.dagger.beta_start * cfg.dagger.beta_decay ** (round_index - 1)


def _collection_tasks(cfg: TrainConfig, round_index: int, train: list[Source], policy) -> list[Task]:
    """Round 0: the expert drives; later rounds: the student, the expert taking over a step
    with probability beta. The expert labels every step. The round's built-in episodes cycle
    over `train`; its procedural ones (train_config.procedural_episodes) run the next unused
    scenarios of the procedural train split."""
    count = cfg.dagger.expert_episodes if round_index == 0 else cfg.dagger.episodes_per_round
    procedural = procedural_episodes(cfg, round_index)
    rng = np.random.default_rng([cfg.seed, round_index])
    student = None if round_index == 0 else PolicyWeights.of(policy, cfg.policy)
    max_steps = int(cfg.dagger.max_episode_s * TerrainNavEnv.control_hz) or None

    def task(scenario: Source, episode: int, seed: int) -> Task:
        return Task(cfg.dagger.teacher if student is None else "student", scenario, episode, seed,
                    weights=student, teacher=cfg.dagger.teacher, takeover=_beta(cfg, round_index),
                    coin_seed=int(rng.integers(0, 2**31)), max_steps=max_steps)

    tasks = [task(train[i % len(train)], i, int(rng.integers(0, VALIDATION_SEED_OFFSET)))
             for i in range(count - procedural)]
    split, first = ProceduralSet("train"), first_procedural_index(cfg, round_index)
    for j in range(procedural):
        index = (first + j) % len(split.seeds)
        tasks.append(task(split, index, split.env_seed(index, int(rng.integers(0, SEED_LIMIT)))))
    return tasks


def _validation_tasks(cfg: TrainConfig, policy) -> list[Task]:
    """The student alone on every validation scenario, seeds disjoint from the training seeds;
    on procedural-validation, its scenarios 0..validation_episodes-1 with the env seeds
    `navctl evaluate --scenarios procedural-validation --seed 0` gives them."""
    student = PolicyWeights.of(policy, cfg.policy)
    names = scenario_names(cfg.scenarios.validation)
    tasks = [Task("student", load_one(name), i, VALIDATION_SEED_OFFSET + 1000 * k + i, keep_trajectory=True,
                  weights=student)
             for i, name in enumerate(names) for k in range(cfg.scenarios.validation_episodes)]
    if has_procedural(cfg.scenarios.validation):
        split = ProceduralSet("validation")
        tasks += [Task("student", split, i, env_seed(split, 0, i), keep_trajectory=True, weights=student)
                  for i in range(cfg.scenarios.validation_episodes)]
    return tasks


def run_episodes(executor: Executor, tasks: list[Task]) -> list[Trajectory]:
    """The trajectories of `tasks`, in task order; an episode that failed raises."""
    results = {}
    for result in executor.run(tasks):
        row = result.row
        if row["status"] != "ok":
            raise RuntimeError(f"episode {row['episode']} on {row['scenario']} failed: {row['error']}")
        results[(row["scenario"], int(row["episode"]), int(row["seed"]))] = result.trajectory
    return [results[(t.scenario.name, t.episode, t.seed)] for t in tasks]


def labelled(traj: Trajectory) -> LabelledSequence:
    """A DAgger episode as a training sequence: what the student saw before each step, the
    expert's labels, whether the expert's escape (or rescue) chose them, and the seconds since
    the scenario's last event fired (inf before the first)."""
    takeovers = traj.takeovers if traj.takeovers is not None else np.zeros(len(traj.labels), dtype=bool)
    return traj.observations[:-1], traj.labels, takeovers, since_event_s(traj)


def since_event_s(traj: Trajectory) -> np.ndarray:
    """(T,) float32: at each step, the simulated seconds since the last event that fired at
    or before the step's time (events are logged at the time they took effect); inf before any."""
    step_times = traj.time_s[:-1]
    since = np.full(len(step_times), np.inf, np.float32)
    fired = np.sort(np.array([e["time_s"] for e in traj.events], dtype=float))
    if fired.size:
        # the log rounds times to 1e-6 s, so an event may read a hair after its step's time
        last = np.searchsorted(fired, step_times + 1e-6, side="right") - 1
        seen = last >= 0
        since[seen] = np.maximum(step_times[seen] - fired[last[seen]], 0.0)
    return since


def _meta(traj: Trajectory) -> dict[str, Any]:
    return {"scenario": traj.scenario, "scenario_seed": traj.scenario_seed, "seed": traj.seed,
            "success": traj.success, "spl": spl(traj), "termination": str(traj.termination)}


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
def training_sequences(policy, episodes: list[LabelledSequence], mirrored: bool) -> list[LabelledSequence]:
    """The episodes as the network trains on them: its inputs (policy.network_inputs: the
    observations, with the base controller's actions when it has one), the labels, the
    takeover flags and the seconds since the last event; each episode followed by its mirror
    image, flags and times unchanged, when `mirrored`."""
    views = []
    for obs, labels, *flags in episodes:
        views += [(obs, labels, *flags)] + ([(*mirror(obs, labels), *flags)] if mirrored else [])
    return [(policy.network_inputs(obs), labels, *flags) for obs, labels, *flags in views]


def _batches(lengths: list[int], size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of sequence indices; batches of similar length waste less time on
    padding, so indices are sorted by length within windows of 4 batches."""
    order = rng.permutation(len(lengths))
    windows = [sorted(order[i:i + 4 * size], key=lambda k: lengths[k]) for i in range(0, len(order), 4 * size)]
    batches = [w[i:i + size] for w in windows for i in range(0, len(w), size)]
    rng.shuffle(batches)
    return batches


def step_weights(seq: LabelledSequence, optim: Optional[Optim] = None) -> np.ndarray:
    """(T,) each step's loss weight: optim.takeover_weight where the teacher's escape (or
    rescue) drove, times optim.event_weight in the event_window_s seconds after an event; 1
    without optim."""
    weights = np.ones(len(seq[0]), np.float32)
    if optim is not None:
        weights = np.where(seq[2], np.float32(optim.takeover_weight), weights)
        weights = np.where(seq[3] < optim.event_window_s, weights * np.float32(optim.event_weight), weights)
    return weights


def _padded(seqs: list[LabelledSequence], batch: list[int], features: Optional[list[np.ndarray]] = None,
            optim: Optional[Optim] = None) -> tuple[np.ndarray, ...]:
    """(obs (B, T, obs_dim), labels (B, T, 2), mask (B, T)) of a batch, zero-padded to its
    longest, and with `features` (one (T, F) array per sequence) their padded (B, T, F) last.
    The mask is each step's loss weight: 0 on padding, else step_weights."""
    lengths = [len(seqs[k][0]) for k in batch]
    t_max = max(lengths)
    obs = np.zeros((len(batch), t_max, seqs[batch[0]][0].shape[1]), np.float32)
    act = np.zeros((len(batch), t_max, 2), np.float32)
    mask = np.zeros((len(batch), t_max), np.float32)
    feats = None if features is None else np.zeros((len(batch), t_max, features[batch[0]].shape[1]), np.float32)
    for j, k in enumerate(batch):
        obs[j, :lengths[j]], act[j, :lengths[j]] = seqs[k][0], seqs[k][1]
        mask[j, :lengths[j]] = step_weights(seqs[k], optim)
        if feats is not None:
            feats[j, :lengths[j]] = features[k]
    return (obs, act, mask) if feats is None else (obs, act, mask, feats)


def fixed_features(policy, seqs: list[LabelledSequence], batch_size: int = 64) -> Optional[list[np.ndarray]]:
    """Per sequence, what the network's untrained first stage (the LSM's reservoir) makes of
    it, (T, features) float32; None when the network has no such stage. Computed once per
    fit instead of in every epoch, in batches of sequences of similar length."""
    import torch

    if not policy.net.has_fixed_features:
        return None
    out: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k][0]))
    for i in range(0, len(order), batch_size):
        batch = order[i:i + batch_size]
        obs = torch.from_numpy(_padded(seqs, batch)[0])
        with torch.no_grad():
            feats = policy.net.fixed_features(obs, torch.full(obs.shape[:2], CONTROL_DT_S)).numpy()
        for j, k in enumerate(batch):
            out[k] = feats[j, :len(seqs[k][0])]
    return out


def _fit_batch(policy, opt, batch: tuple[np.ndarray, ...], optim: Optim) -> tuple[float, float]:
    """Truncated BPTT over one padded batch (_padded's arrays), one optimizer step per chunk,
    the state carried from chunk to chunk; each chunk's loss is the mean over its steps
    weighted by the mask. Returns (summed loss x weights, weights)."""
    import torch

    obs_t, act_t, mask_t, *feats = (torch.from_numpy(a) for a in batch)
    size, t_max, chunk = obs_t.shape[0], obs_t.shape[1], optim.chunk_steps
    dt_t = torch.full((size, chunk), CONTROL_DT_S)
    state, total, count = None, 0.0, 0.0
    for t0 in range(0, t_max, chunk):
        t1 = min(t0 + chunk, t_max)
        pred, state = policy.train_forward(obs_t[:, t0:t1], dt_t[:, :t1 - t0], state,
                                           features=feats[0][:, t0:t1] if feats else None)
        m = mask_t[:, t0:t1]
        loss = (((pred - act_t[:, t0:t1]) ** 2).sum(-1) * m).sum() / m.sum().clamp(min=1.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.net.parameters(), optim.grad_clip)
        opt.step()
        state = tuple(s.detach() for s in state)
        total += float(loss.detach()) * float(m.sum())
        count += float(m.sum())
    return total, count


def fit(policy, seqs: list[LabelledSequence], optim: Optim, seed: int, progress=None) -> float:
    """Trains `policy` on all sequences (training_sequences) by truncated BPTT, each step's
    loss weighted by step_weights (the teacher's takeovers, the seconds after an event);
    returns the last epoch's (weighted) mean loss."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(policy.net.parameters(), lr=optim.lr)
    features = fixed_features(policy, seqs)
    policy.net.train()
    epoch_loss = math.nan
    for epoch in range(optim.epochs):
        # cosine annealing, one value per epoch: big steps while far off, small ones to settle
        lr = optim.lr_min + (optim.lr - optim.lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / optim.epochs))
        for group in opt.param_groups:
            group["lr"] = lr
        total, count = 0.0, 0.0
        for batch in _batches([len(s[0]) for s in seqs], optim.batch_episodes, rng):
            padded = _padded(seqs, batch, features, optim)
            batch_total, batch_count = _fit_batch(policy, opt, padded, optim)
            total, count = total + batch_total, count + batch_count
        epoch_loss = total / max(count, 1.0)
        if progress is not None:
            progress.set_postfix_str(f"epoch {epoch + 1}/{optim.epochs} loss {epoch_loss:.4f}")
    policy.net.eval()
    return epoch_loss


def set_normalization(policy, seqs: list[LabelledSequence]) -> None:
    """Input mean and std from the training sequences (std floored so constant inputs stay finite)."""
    import torch

    obs = np.concatenate([s[0] for s in seqs])
    with torch.no_grad():
        policy.net.obs_mean.copy_(torch.from_numpy(obs.mean(0)))
        policy.net.obs_std.copy_(torch.from_numpy(np.maximum(obs.std(0), 1e-2)))


# --- the model card -----------------------------------------------------------------------
def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def model_card(cfg: TrainConfig, config_path: str, state: dict, policy) -> dict[str, Any]:
    import torch

    # the shipped checkpoint is the round chosen on validation (run_directory: best.safetensors)
    chosen = state["rounds"][state["best_round"]] if state.get("best_round") is not None else {}
    phases = ("collect_s", "fit_s", "validate_s")
    return {
        "name": cfg.name,
        "config_file": os.fspath(config_path),
        "config": cfg.as_dict(),
        "seed": cfg.seed,
        "git_commit": _git_commit(),
        "chosen_round": state.get("best_round"),  # the round whose checkpoint this card describes
        "data_steps": chosen.get("data_steps", 0),
        "episodes": chosen.get("episodes", 0),
        "distinct_scenarios": chosen.get("distinct_scenarios", 0),  # trained on; generated ones counted apart below
        "procedural_scenarios": chosen.get("procedural_scenarios", 0),
        "training_wall_time_s": round(state["wall_time_s"], 1),  # all rounds, the ones after the chosen one too
        "time_s": {k[:-2]: round(sum(r.get(k, 0.0) for r in state["rounds"]), 1) for k in phases},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "torch": torch.__version__},
        "num_parameters": policy.num_parameters,
        "validation": {"success_rate": chosen.get("val_success"), "spl": chosen.get("val_spl"),
                       "scenarios": scenario_names(cfg.scenarios.validation)
                       + (["procedural-validation"] if has_procedural(cfg.scenarios.validation) else []),
                       "episodes_per_scenario": cfg.scenarios.validation_episodes,
                       "procedural_scenarios": cfg.scenarios.validation_episodes
                       if has_procedural(cfg.scenarios.validation) else 0},
        "rounds": state["rounds"],
        "command": f"navctl train --config {config_path} --seed {cfg.seed}",
    }


# --- command line ---------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (see configs/)")
    parser.add_argument("--out", help="run directory (default runs/train-NAME-seedS)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete round")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--ship", action="store_true",
                        help="copy the final checkpoint and model card into policies/checkpoints/NAME.*")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="where the training and validation episodes run: local processes (default) or Ray")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="the Ray cluster to use with --backend ray (default: start a local Ray)")


def main(args: argparse.Namespace) -> int:
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    card = train(args.config, args.out, args.resume, args.seed, args.ship, show_progress=not args.no_progress,
                 backend=args.backend, ray_address=args.ray_address)
    v = card["validation"]
    print(f"{card['name']}: validation success {v['success_rate']:.2f}, SPL {v['spl']:.2f}, "
          f"{card['data_steps']} data steps, {card['training_wall_time_s']:.0f} s")
    return 0
