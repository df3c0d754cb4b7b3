"""Is the plasticity rule of a plastic policy alive, and does the policy lean on it?

Rolls out a plastic policy (the shipped `liquid` by default) on scenarios with a
mid-episode change and records, every control step, from the policy's own state:

    m        the neuromodulator tanh(W_m h + b_m) (does it sit at zero?)
    |H|      the mean |trace| over the plastic synapses, and the share at +-h_max (saturated?)
    |aH|     the mean |alpha * H|: how far plasticity moves a synapse's weight, against the
             mean |w| of those synapses (does the learned alpha let the traces matter?)

and prints them averaged over the 5 s before and the 5 s after the first event, with the
learned rule's parameters (mean |alpha|, mean eta, mean decay per step). Then it runs the same
episodes twice more and prints the three success rates and times to goal:

    frozen   plasticity off, traces at zero all episode (the `NAME-frozen` ablation): what
             the weights w do alone
    held     plasticity on until the first event fires, then the modulator silenced (m = 0),
             so the traces keep the values they had and stop changing: what adapting to the
             change itself buys, with the traces the policy built before it

    python benchmarks/plasticity_probe.py [--policy liquid] [--scenarios right-motor-fade,rough-hills-left-fade]
                                          [--episodes 5] [--seed 0]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import envs  # noqa: F401  (registers the env)
from envs.scenarios import load
from envs.terrain_nav import TerrainNavEnv
from navctl.episode import episode_seed
from navctl.policy_names import make_policy
from navctl.rollout import rollout

WINDOW_S = 5.0  # seconds before / after the first event


class Recorder:
    """Wraps a plastic LearnedPolicy and records m, |H|, saturation and |alpha*H| after each act."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.privileged = False
        rule = policy.cell.rule
        with torch.no_grad():
            self.mask = rule.mask.numpy().astype(bool)
            self.alpha = (rule.alpha * rule.mask).numpy()
            self.mod_w = rule.modulator.weight.numpy()
            self.mod_b = rule.modulator.bias.numpy()
        self.h_max = rule.h_max
        self.rows: list[tuple[float, float, float, float]] = []

    def reset(self, batch_size: int = 1) -> None:
        self.policy.reset(batch_size)
        self.rows = []

    def act(self, obs, info=None):
        h_before = self.policy.state[0].numpy()[0]
        action = self.policy.act(obs)
        trace = self.policy.state[1].numpy()[0][self.mask]
        m = float(np.mean(np.abs(np.tanh(self.mod_w @ h_before + self.mod_b))))
        self.rows.append((m, float(np.mean(np.abs(trace))), float(np.mean(np.abs(trace) >= self.h_max - 1e-6)),
                          float(np.mean(np.abs(self.alpha[self.mask] * trace)))))
        return action


class HoldAtEvent:
    """Wraps a plastic LearnedPolicy; once the env logs its first event, the modulator is
    silenced (m = tanh(0) = 0), so H keeps its value from then on. The env's event log is
    read only to time the ablation; the policy still sees observations only."""

    privileged = True  # to be handed the info dict (for its event log)

    def __init__(self, policy) -> None:
        self.policy = policy
        self.name = policy.name
        modulator = policy.cell.rule.modulator
        self._modulator = modulator
        self._saved = (modulator.weight.detach().clone(), modulator.bias.detach().clone())
        self._held = False

    def reset(self, batch_size: int = 1) -> None:
        self._restore()
        self.policy.reset(batch_size)

    def act(self, obs, info=None):
        if not self._held and info is not None and info["events"]:
            with torch.no_grad():
                self._modulator.weight.zero_()
                self._modulator.bias.zero_()
            self.policy.refresh()  # same state, new snapshot of the weights
            self._held = True
        return self.policy.act(obs)

    def _restore(self) -> None:
        if self._held:
            with torch.no_grad():
                self._modulator.weight.copy_(self._saved[0])
                self._modulator.bias.copy_(self._saved[1])
            self._held = False


def _windows(rows: np.ndarray, times: np.ndarray, t_event: float) -> tuple[np.ndarray, np.ndarray]:
    before = rows[(times >= t_event - WINDOW_S) & (times < t_event)]
    after = rows[(times >= t_event) & (times < t_event + WINDOW_S)]
    return before.mean(0), after.mean(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="liquid")
    ap.add_argument("--scenarios", default="right-motor-fade,rough-hills-left-fade,mud-right-fade")
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    policy = make_policy(args.policy)
    if not policy.plasticity:
        raise SystemExit(f"{args.policy} has no plasticity to probe")
    rule = policy.cell.rule
    with torch.no_grad():
        mask = rule.mask.bool()
        layers = getattr(policy.cell, "layers", [])  # CfC: fused per-layer weights with their wiring mask
        w_plastic = torch.cat([layer.weight[layer.mask.bool()].abs() for layer in layers]).mean() \
            if layers else torch.tensor(float("nan"))
        print(f"{args.policy}: rule over {int(mask.sum())} synapses: mean |alpha| {rule.alpha[mask].abs().mean():.3f}, "
              f"mean eta {rule.eta[mask].mean():.3f}, mean decay/step {torch.sigmoid(rule.decay_logit)[mask].mean():.4f}, "
              f"mean |w| of the wired synapses {float(w_plastic):.3f}")
    recorder = Recorder(policy)
    holder = HoldAtEvent(policy)
    print("scenario | window | |m| | |H| | saturated | |alpha*H|")
    for name in args.scenarios.split(","):
        scenario = load(name)
        env = TerrainNavEnv(scenario)
        before, after, outcome = [], [], {"plastic": [], "held": [], "frozen": []}
        for i in range(args.episodes):
            seed = episode_seed(args.seed, scenario.name, i)
            policy.plasticity = True
            traj = rollout(env, recorder, seed)
            outcome["plastic"].append((traj.success, traj.time_s[-1]))
            if traj.events:
                b, a = _windows(np.array(recorder.rows), traj.time_s[1:], float(traj.events[0]["time_s"]))
                before.append(b)
                after.append(a)
            held = rollout(env, holder, seed)
            holder.reset()  # the modulator back
            outcome["held"].append((held.success, held.time_s[-1]))
            policy.plasticity = False
            frozen = rollout(env, policy, seed)
            outcome["frozen"].append((frozen.success, frozen.time_s[-1]))
        policy.plasticity = True
        env.close()
        for label, rows in (("5 s before", before), ("5 s after", after)):
            if rows:
                m, h, sat, ah = np.nanmean(np.array(rows), 0)
                print(f"{name} | {label} | {m:.2f} | {h:.2f} | {sat:.0%} | {ah:.3f}")
        for label, runs in outcome.items():
            done = [t for s, t in runs if s]
            print(f"{name}: {label:7s} success {len(done)}/{len(runs)}, "
                  f"time to goal {np.mean(done) if done else float('nan'):.1f} s")


if __name__ == "__main__":
    main()
