"""Training throughput of the shipped plastic liquid cells against ncps, measured in one run.

One training step = forward over T = 50 steps, a mean-squared loss against target actions,
backward (BPTT through the neuron states and the plastic traces) and an Adam step, torch on
one thread. Throughput = samples / s = batch * T / (seconds per training step).

    ours   the shipped policy configs (configs/liquid.yaml: plastic CfC, NCP of 32 neurons,
           one modulator per neuron, alpha_init 0.5, its trace loops in C when a compiler is
           there, see policies/cfc_kernel.py; configs/liquid-ltc.yaml: plastic LTC;
           configs/lsm.yaml: the Liquid State Machine, its 300 spiking neurons run without
           gradient for 10 sub-steps a step, BPTT through its plastic readout),
           untrained, trained through `LearnedPolicy.train_forward(obs, dt, state)`, the
           entry point navctl/train.py uses (per-sample dt of (batch, T), 0.05 s).
    ncps   ncps.torch's CfC / LTC with an AutoNCP wiring of the same neuron count and
           outputs, on the same observations and targets (its default time span of 1, since
           its per-sample time spans are not what its fast path runs).

The sides alternate within each round; each figure is the best round's mean, so that a
busy machine disturbs both alike.

    python benchmarks/train_step.py [--rounds 5] [--steps 4] [--batches 32,256] [--markdown]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import yaml

torch.set_num_threads(1)

from policies.cfc_kernel import kernels  # noqa: E402
from policies.learned import build_policy  # noqa: E402
from policy_step import measure  # noqa: E402  (benchmarks/ is on the path when run as a script)

ROOT = Path(__file__).resolve().parent.parent
T = 50
DT = 0.05  # s, the env's control period


def shipped_policy_config(name: str) -> dict:
    """The `policy:` block of configs/NAME.yaml."""
    with open(ROOT / "configs" / f"{name}.yaml") as f:
        return dict(yaml.safe_load(f)["policy"])


def ours(name: str, obs: torch.Tensor, target: torch.Tensor) -> Callable[[], float]:
    policy = build_policy(shipped_policy_config(name))
    opt = torch.optim.Adam(policy.net.parameters(), lr=1e-3)
    dt = torch.full(obs.shape[:2], DT)

    def train_step() -> float:
        pred, _ = policy.train_forward(obs, dt, None)
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return train_step


def ncps(kind: str, units: int, obs: torch.Tensor, target: torch.Tensor) -> Callable[[], float]:
    from ncps.torch import CfC, LTC
    from ncps.wirings import AutoNCP

    module = (CfC if kind == "cfc" else LTC)(obs.shape[2], AutoNCP(units, target.shape[2], seed=22222), batch_first=True)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)

    def train_step() -> float:
        pred, _ = module(obs)
        loss = ((torch.tanh(pred) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per side per round")
    parser.add_argument("--batches", default="32,256")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    loops = "C kernels" if kernels(torch.float32) is not None else "eager torch (no C compiler or NAVCTL_EAGER=1)"
    print(f"# train step benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"(1 thread), T = {T}, load {os.getloadavg()[0]:.2f}; plastic CfC trace loops: {loops} "
          f"(ready in {time.perf_counter() - started:.2f} s)")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        torch.manual_seed(0)
        config = build_policy(shipped_policy_config("liquid")).config
        units = config.units
        obs = torch.randn(batch, T, config.obs_dim)
        target = torch.rand(batch, T, 2) * 2 - 1
        pairs = (("liquid", "ncps CfC", "cfc"), ("liquid-ltc", "ncps LTC", "ltc"), ("lsm", "ncps CfC", "cfc"))
        for name, ref_name, ref_kind in pairs:
            fns = {name: ours(name, obs, target), ref_name: ncps(ref_kind, units, obs, target)}
            times = measure(fns, args.steps, args.rounds, warmup=1)
            rate = {k: batch * T / s for k, s in times.items()}
            rows.append((batch, name, rate[name], ref_name, rate[ref_name], rate[name] / rate[ref_name]))

    if args.markdown:
        print("\n| batch | ours | samples/s | reference | samples/s | ratio |\n|---|---|---:|---|---:|---:|")
        for batch, name, r, ref_name, rr, ratio in rows:
            print(f"| {batch} | {name} | {r:,.0f} | {ref_name} | {rr:,.0f} | {ratio:.2f} |")
    else:
        print(f"\n{'batch':>5}  {'ours':<11} {'samples/s':>10}  {'reference':<9} {'samples/s':>10}  {'ratio':>5}")
        for batch, name, r, ref_name, rr, ratio in rows:
            print(f"{batch:>5}  {name:<11} {r:10,.0f}  {ref_name:<9} {rr:10,.0f}  {ratio:5.2f}")


if __name__ == "__main__":
    main()
