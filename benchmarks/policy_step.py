"""Cost of one control step of our liquid cells against ncps.torch, measured in one run.

For NCP wirings of 19 and 32 neurons (16 inputs, 2 outputs; the same wiring for ncps and
for us): the batch-1 latency of one step of our plastic CfC, plastic LTC, non-plastic CfC
and LTC (numpy fast path, numpy in and out), of our torch path, and of ncps.torch's CfC and
LTC modules stepping one time step (torch tensors prepared in advance, which favours ncps);
then throughput at batch 256 (torch, inference mode). Also the full `act()` of the shipped
policies (their checkpoints: the shipped liquid has one neuromodulator per neuron), of
the untrained default liquid and of the classical controller with and without its escape
(which a residual policy runs first), on the 41 observations of a real episode (the
classical controller on `clutter`), against ncps's CfC step with the same 32 neurons and
41 inputs. Targets: our plastic CfC step, and the shipped liquid's network step, at most
1/10 of the ncps CfC step; the Liquid State Machine's act() (`lsm`: 300 spiking neurons, 10
sub-steps per control step, plastic readout; the shipped checkpoint, or an untrained one
built from configs/lsm.yaml while none is shipped) at most one ncps CfC step.

Timings are the minimum over interleaved rounds of the mean per call, so that a busy
machine disturbs both sides alike.

    python benchmarks/policy_step.py [--rounds 7] [--calls 2000] [--markdown]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import numpy as np
import torch
import yaml

import policies
from navctl.policy_names import classical_controller, with_base

torch.set_num_threads(1)

from policies.cfc import CfCCell  # noqa: E402
from policies.fastpath import numpy_step  # noqa: E402
from policies.learned import build_policy  # noqa: E402
from policies.ltc import LTCCell  # noqa: E402
from policies.plasticity import RuleSpec  # noqa: E402
from policies.wiring import from_ncps  # noqa: E402

INPUTS, OUTPUTS = 16, 2
LSM_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "lsm.yaml")


def measure(fns: dict[str, Callable[[], object]], calls: int, rounds: int, warmup: int = 200) -> dict[str, float]:
    """Seconds per call of each function: min over rounds (interleaved) of the round mean."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / calls)
    return best


def stepper(cell, rng: np.random.Generator) -> Callable[[], object]:
    fast = numpy_step(cell)
    fast.reset()
    xs = rng.standard_normal((256, INPUTS)).astype(np.float32)
    i = [0]

    def step():
        i[0] = (i[0] + 1) & 255
        return fast.step(xs[i[0]], 1.0)

    return step


def torch_stepper(cell, batch: int) -> Callable[[], object]:
    x = torch.randn(batch, INPUTS)
    state = [cell.initial_state(batch)]
    dt = torch.ones(batch)

    def step():
        with torch.inference_mode():
            y, state[0] = cell(x, state[0], dt)
        return y

    return step


def ncps_stepper(module, units: int, batch: int) -> Callable[[], object]:
    x = torch.randn(batch, 1, INPUTS)
    hx = [torch.zeros(batch, units)]

    def step():
        with torch.inference_mode():
            y, hx[0] = module(x, hx[0])
        return y

    return step


def lsm_policy() -> tuple[str, policies.Policy]:
    """(label, policy): the shipped lsm, or while none is shipped an untrained one of configs/lsm.yaml
    (the same cost: the reservoir's product is dense, whatever the weights)."""
    if (policies.CHECKPOINT_DIR / "lsm.safetensors").is_file():
        return "shipped lsm", policies.load("lsm")
    with open(LSM_CONFIG) as f:
        return "untrained lsm (configs/lsm.yaml)", build_policy(with_base(yaml.safe_load(f)["policy"]))


def recurrent_input_benchmark(policy, calls: int, rounds: int) -> dict[str, float]:
    """Seconds per computation of the LSM's recurrent input from one sub-step's spikes (10 %
    of the neurons firing, 20 Hz in 5 ms): the dense product act() uses, and the event-driven
    alternative that sums the weight rows of the neurons that fired."""
    weights = policy.cell.reservoir_weights.numpy()
    n = weights.shape[0]
    spikes = (np.random.default_rng(1).random(n) < 0.1).astype(np.float32)
    out = np.zeros(n, np.float32)
    return measure({
        f"dense product ({n} x {n}, {np.count_nonzero(weights)} synapses)": lambda: np.dot(spikes, weights, out),
        "rows of the neurons that fired (index arrays)": lambda: np.add.reduce(
            weights.take(np.flatnonzero(spikes), 0), 0, out=out),
    }, calls, rounds)


def episode_observations() -> np.ndarray:
    """The observations (steps, 41) of a real episode, the classical controller driving on
    `clutter`: act() of a policy that corrects the classical controller costs what the
    controller's lidar memory and corridor search cost, which depends on what the lidar sees."""
    from envs.terrain_nav import TerrainNavEnv
    from navctl.rollout import rollout

    env = TerrainNavEnv("clutter")
    traj = rollout(env, classical_controller(), seed=0, keep_observations=True)
    env.close()
    return np.asarray(traj.observations, np.float32)


def act_benchmark(calls: int, rounds: int) -> tuple[dict[str, float], str]:
    """Seconds per act() of the shipped policies (the shipped liquid first) and per step of
    the ncps CfC of the same size; returns the times and the reference's name."""
    from ncps.torch import CfC as NcpsCfC
    from ncps.wirings import AutoNCP

    act_fns = {}
    # the shipped checkpoints (the shipped liquid has one neuromodulator per neuron) and the default liquid
    act_policies = [(f"shipped {name}", policies.load(name)) for name in ("liquid", "liquid-ltc", "cfc", "lstm", "mlp")]
    act_policies.insert(1, ("untrained default liquid", build_policy({"kind": "liquid"})))
    # the cost of the progress inputs (policies/progress.py): the shipped liquid's config with them on
    progress_config = {**act_policies[0][1].config.to_dict(), "progress_inputs": True}
    act_policies.insert(1, ("shipped liquid's config with progress_inputs (untrained)", build_policy(progress_config)))
    act_policies.append(lsm_policy())
    obs = episode_observations()
    bases = [("classical controller", classical_controller()),
             ("classical-escape (the shipped residual policies' base)", classical_controller(escape=True))]
    for label, policy in [*act_policies, *bases]:
        policy.reset(1)
        i = [0]

        def act(policy=policy, i=i):
            i[0] = (i[0] + 1) % len(obs)
            return policy.act(obs[i[0]])

        params = getattr(policy, "num_parameters", None)
        act_fns[label if params is None else f"{label} ({params} parameters)"] = act
    # the reference: ncps's CfC with the policy's neuron count, on the policy's 41 observations
    shipped = act_policies[0][1]
    act_units, act_inputs = shipped.cell.state_size, shipped.config.obs_dim
    ncps_act = NcpsCfC(act_inputs, AutoNCP(act_units, OUTPUTS, seed=22222))
    x_act, hx_act = torch.randn(1, 1, act_inputs), torch.zeros(1, act_units)

    def ncps_act_step():
        with torch.inference_mode():
            return ncps_act(x_act, hx_act)

    act_ref = f"ncps CfC step ({act_units} neurons, {act_inputs} inputs)"
    act_fns[act_ref] = ncps_act_step
    return measure(act_fns, calls, rounds), act_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args()

    from ncps.torch import CfC as NcpsCfC, LTC as NcpsLTC
    from ncps.wirings import AutoNCP

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    print(f"# policy step benchmark: {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__} (1 thread), numpy {np.__version__}, load {os.getloadavg()[0]:.2f}")
    latency_rows, throughput_rows = [], []
    for units in (19, 32):
        ncps_wiring = AutoNCP(units, OUTPUTS, seed=22222)
        ncps_wiring.build(INPUTS)
        wiring, _ = from_ncps(ncps_wiring)
        ncps_cfc = NcpsCfC(INPUTS, AutoNCP(units, OUTPUTS, seed=22222))
        ncps_ltc = NcpsLTC(INPUTS, AutoNCP(units, OUTPUTS, seed=22222))
        cells = {
            "plastic CfC": CfCCell(wiring, rule=RuleSpec()),
            "plastic LTC": LTCCell(wiring, rule=RuleSpec()),
            "CfC": CfCCell(wiring),
            "LTC": LTCCell(wiring),
        }
        fns = {f"ours {name} (numpy)": stepper(cell, rng) for name, cell in cells.items()}
        fns.update({f"ours {name} (torch)": torch_stepper(cell, 1) for name, cell in cells.items()})
        fns["ncps CfC"] = ncps_stepper(ncps_cfc, units, 1)
        fns["ncps LTC"] = ncps_stepper(ncps_ltc, units, 1)
        times = measure(fns, args.calls, args.rounds)
        ref_cfc, ref_ltc = times["ncps CfC"], times["ncps LTC"]
        for name, seconds in times.items():
            ref = ref_ltc if "LTC" in name else ref_cfc
            latency_rows.append((units, name, seconds * 1e6, seconds / ref))

        batch = 256
        fns = {f"ours {name} (torch)": torch_stepper(cell, batch) for name, cell in cells.items()}
        fns["ncps CfC"] = ncps_stepper(ncps_cfc, units, batch)
        fns["ncps LTC"] = ncps_stepper(ncps_ltc, units, batch)
        times = measure(fns, max(args.calls // 20, 20), args.rounds)
        for name, seconds in times.items():
            throughput_rows.append((units, name, seconds * 1e6, batch / seconds))

    act_times, act_ref = act_benchmark(args.calls, args.rounds)
    shipped_ratio = next(iter(act_times.values())) / act_times[act_ref]
    lsm_ratio = next(t for name, t in act_times.items() if "lsm" in name) / act_times[act_ref]
    recurrent = recurrent_input_benchmark(lsm_policy()[1], args.calls, args.rounds)

    if args.markdown:
        print("\n| neurons | step (batch 1) | µs | / ncps same model |\n|---|---|---|---|")
        for units, name, us, ratio in latency_rows:
            print(f"| {units} | {name} | {us:.1f} | {ratio:.3f} |")
        print("\n| neurons | step (batch 256, torch) | µs per batch | samples/s |\n|---|---|---|---|")
        for units, name, us, rate in throughput_rows:
            print(f"| {units} | {name} | {us:.0f} | {rate:,.0f} |")
        print(f"\n| policy.act, batch 1, 41 obs, 32 neurons | µs | / {act_ref} |\n|---|---:|---:|")
        for name, seconds in act_times.items():
            print(f"| {name} | {seconds * 1e6:.1f} | {seconds / act_times[act_ref]:.3f} |")
    else:
        print(f"\n{'neurons':>7}  {'batch-1 step':<28} {'us':>8}  {'/ ncps':>7}")
        for units, name, us, ratio in latency_rows:
            print(f"{units:>7}  {name:<28} {us:8.1f}  {ratio:7.3f}")
        print(f"\n{'neurons':>7}  {'batch-256 step (torch)':<28} {'us':>8}  {'samples/s':>11}")
        for units, name, us, rate in throughput_rows:
            print(f"{units:>7}  {name:<28} {us:8.0f}  {rate:11,.0f}")
        print(f"\n{'policy.act (batch 1, 41 obs, 32 neurons)':<48} {'us':>8}  {'/ ncps':>7}")
        for name, seconds in act_times.items():
            print(f"{name:<48} {seconds * 1e6:8.1f}  {seconds / act_times[act_ref]:7.3f}")
    print("\nLSM recurrent input per sub-step (numpy):")
    for name, seconds in recurrent.items():
        print(f"  {name}: {seconds * 1e6:.1f} us")
    target = [r for r in latency_rows if r[1] == "ours plastic CfC (numpy)"]
    verdict = ", ".join(f"{u} neurons {ratio:.3f}" for u, _, _, ratio in target)
    print(f"\nplastic CfC / ncps CfC (target <= 0.1): {verdict}")
    print(f"shipped liquid act() / {act_ref} (target <= 0.10): {shipped_ratio:.3f}")
    print(f"lsm act() / {act_ref} (target <= 1): {lsm_ratio:.3f}")


if __name__ == "__main__":
    main()
