"""Checkpoints: round trip for every kind; corrupted, truncated, foreign and mismatched
files give a CheckpointError that names the file and the problem."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import policies
from policies.checkpoint import CheckpointError, _digest, load_policy, save_policy
from policies.learned import KINDS

torch.set_num_threads(1)


def older_checkpoint(policy, path, without: tuple[str, ...]) -> str:
    """`policy` saved at `path` as code from before the config fields `without` wrote it:
    the same tensors, those keys left out of the metadata's config."""
    save_policy(policy, path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    config = json.loads(metadata["config"])
    for key in without:
        config.pop(key)
    metadata["config"] = json.dumps(config)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    return str(path)


def trained_looking(kind: str, **config):
    policy = policies.build({"kind": kind, "seed": 5, **config})
    with torch.no_grad():
        policy.net.obs_mean.uniform_(-1, 1)
        policy.net.obs_std.uniform_(0.5, 2.0)
    return policy


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_the_same_actions(kind, tmp_path):
    policy = trained_looking(kind, lifelong=True, obs_clip=5.0)
    path = save_policy(policy, tmp_path / f"{kind}.safetensors")
    loaded = policies.load(path)
    assert loaded.config == policy.config and loaded.num_parameters == policy.num_parameters
    if policy.cell is not None:  # a liquid cell's wiring; the LSM has none (its reservoir is in the tensors)
        assert getattr(loaded.cell, "wiring", None) == getattr(policy.cell, "wiring", None)
    obs = np.random.default_rng(0).standard_normal((50, 41)).astype(np.float32)
    policy.reset(1)
    loaded.reset(1)
    for o in obs:
        np.testing.assert_array_equal(loaded.act(o), policy.act(o))


def test_file_holds_no_pickle_and_names_its_format(tmp_path):
    path = save_policy(trained_looking("liquid"), tmp_path / "p.safetensors")
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + header_len])["__metadata__"]
    assert meta["format"] == "navctl-policy" and meta["format_version"] == "1" and meta["kind"] == "liquid"
    assert json.loads(meta["config"])["kind"] == "liquid"
    assert b"\x80\x04" not in raw[:8 + header_len]  # no pickle protocol marker in the header


def expect_error(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_policy(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, ValueError)
    return message


def test_truncated_and_garbage_files(tmp_path):
    good = save_policy(trained_looking("liquid"), tmp_path / "good.safetensors").read_bytes()
    for cut in (len(good) - 100, len(good) // 2, 20, 0):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(good[:cut])
        expect_error(path, "not a readable safetensors checkpoint")
    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    expect_error(noise, "not a readable")
    expect_error(tmp_path / "missing.safetensors", "no such checkpoint file")


def test_corrupted_tensor_bytes(tmp_path):
    path = save_policy(trained_looking("liquid"), tmp_path / "p.safetensors")
    raw = bytearray(path.read_bytes())
    raw[-7] ^= 0x40  # flip a bit in the last tensor's data
    path.write_bytes(bytes(raw))
    expect_error(path, "SHA-256")


def test_foreign_and_mismatched_files(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    expect_error(foreign, "format")

    policy = trained_looking("liquid")
    tensors = {k: v.contiguous() for k, v in policy.net.state_dict().items()}
    path = save_policy(policy, tmp_path / "p.safetensors")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + n])["__metadata__"]

    def rewrite(name, tensors=tensors, **changes):
        target = tmp_path / name
        save_file(tensors, str(target), metadata={**meta, **changes})
        return target

    config = json.loads(meta["config"])
    expect_error(rewrite("version.safetensors", format_version="99"), "format version")
    expect_error(rewrite("kind.safetensors", kind="lstm"), "kind")
    expect_error(rewrite("config.safetensors", config=json.dumps({**config, "bogus": 1})), "invalid config", "bogus")
    # a config the tensors do not fit: the hash is fine, the shapes are not
    other = policies.build({"kind": "lstm"})
    lstm_tensors = {k: v.contiguous() for k, v in other.net.state_dict().items()}

    bad = rewrite("shapes.safetensors", tensors=lstm_tensors, sha256=_digest(lstm_tensors))
    message = expect_error(bad, "does not match its config")
    assert "missing tensors" in message and "unexpected tensors" in message
    smaller = {**tensors, "cell.layers.0.bias": tensors["cell.layers.0.bias"][:-1].clone()}
    message = expect_error(rewrite("bias.safetensors", tensors=smaller, sha256=_digest(smaller)), "cell.layers.0.bias")
    assert "shape" in message
    nan = {**tensors, "cell.output_w": torch.full_like(tensors["cell.output_w"], float("nan"))}
    expect_error(rewrite("nan.safetensors", tensors=nan, sha256=_digest(nan)), "non-finite")


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc"])
def test_lifelong_traces_are_saved_and_loaded_bit_identically(kind, tmp_path):
    policy = policies.build({"kind": kind, "lifelong": True, "modulator": "neuron"})
    obs = np.random.default_rng(0).standard_normal((60, 41)).astype(np.float32) * 2
    policy.reset(1)
    for t in range(40):  # an episode: the traces adapt
        policy.act(obs[t])
    trace = policy.lifelong_trace
    assert trace is not None and trace.abs().max() > 0
    loaded = load_policy(save_policy(policy, tmp_path / "p.safetensors"))
    assert torch.equal(loaded.lifelong_trace, trace)
    policy.reset(1)
    loaded.reset(1)  # the restarted policy starts its next episode from the saved traces
    assert torch.equal(loaded.state[1], policy.state[1]) and torch.equal(loaded.state[1], trace)
    for t in range(40, 60):
        assert np.array_equal(loaded.act(obs[t]), policy.act(obs[t]))
    assert torch.equal(loaded.state[1], policy.state[1])
    # a policy that is not lifelong saves no traces
    policy = policies.build({"kind": kind})
    policy.reset(1)
    policy.act(obs[0])
    assert load_policy(save_policy(policy, tmp_path / "q.safetensors")).lifelong_trace is None


def test_lifelong_trace_of_the_wrong_shape_is_rejected(tmp_path):
    policy = policies.build({"kind": "liquid", "lifelong": True})
    path = save_policy(policy, tmp_path / "p.safetensors")
    with safe_open(str(path), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["lifelong_trace"] = torch.zeros(1, 5, 5)
    metadata["sha256"] = _digest(tensors)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="lifelong_trace has shape"):
        load_policy(path)
