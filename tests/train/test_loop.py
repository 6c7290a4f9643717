"""The training loop: early stopping keeps the best weights, the time limit stops, resume is bit-for-bit (with a
torch or a numpy rng, and torch's global generator), every loss is an optimiser step, and the model is written
with the common card fields (and as a CPU model from a GPU, where there is one)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_model
from metabo.model.io import load_model
from metabo.train.loop import LoopConfig, describe_device, resolve_device, train


def regression():
    """A linear model and a noisy regression loss drawn from the rng (so resume must restore the rng)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    w_true = torch.tensor([[1.0, -2.0, 0.5]])

    def losses(step, rng):
        x = torch.randn(16, 3, generator=rng)
        y = x @ w_true.T + 0.1 * torch.randn(16, 1, generator=rng)
        yield ((model(x) - y) ** 2).mean()

    return model, losses


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_early_stopping_restores_the_best_weights():
    model, losses = regression()
    scripted = iter([5.0, 3.0, 1.0, 2.0, 1.5, 0.5])  # best at the third evaluation, then two without gain
    seen = {}

    def evaluate():
        seen[len(seen) * 2] = weights(model)  # evaluations at steps 0, 2, 4, ...
        return {"val": next(scripted)}

    cfg = LoopConfig(steps=100, lr=1e-2, eval_every=2, eval_at_start=True, monitor="val", patience=2,
                     progress=False)
    state = train(model, losses, cfg, rng=torch.Generator().manual_seed(0), evaluate=evaluate)
    assert state.stop_reason == "early stopping" and state.stopped_early
    assert state.step == 8 and state.best_step == 4 and state.best == 1.0
    assert [r["step"] for r in state.history] == [0, 2, 4, 6, 8]
    assert state.history[0]["train_loss"] is None and state.history[1]["val"] == 3.0
    final = weights(model)
    assert all(torch.equal(final[k], seen[4][k]) for k in final)
    assert not torch.equal(final["weight"], seen[8]["weight"])


def test_without_patience_the_last_weights_stay_and_the_last_step_is_evaluated():
    model, losses = regression()
    cfg = LoopConfig(steps=5, lr=1e-2, eval_every=2, monitor="val", progress=False)
    state = train(model, losses, cfg, rng=torch.Generator().manual_seed(0), evaluate=lambda: {"val": 1.0})
    assert state.stop_reason == "max steps" and state.step == 5
    assert [r["step"] for r in state.history] == [2, 4, 5]


def test_time_limit_stops_after_the_step_that_passes_it():
    model, losses = regression()
    cfg = LoopConfig(steps=1000, lr=1e-2, max_minutes=1e-9, eval_every=100, progress=False)
    state = train(model, losses, cfg, rng=torch.Generator().manual_seed(0), evaluate=lambda: {"val": 0.0})
    assert state.stop_reason == "time limit (max_minutes)" and state.step == 1
    assert [r["step"] for r in state.history] == [1]  # evaluated at the end


def test_each_loss_is_one_optimiser_step_and_the_schedule_hook_sets_the_rate():
    model, _ = regression()
    before = weights(model)
    x = torch.randn(8, 3)

    def three_losses(step, rng):
        for _ in range(3):
            yield model(x).pow(2).mean()

    train(model, three_losses, LoopConfig(steps=2, lr=1e-2, progress=False), lr_at=lambda step: 0.0)
    assert all(torch.equal(before[k], v) for k, v in weights(model).items())  # rate 0: nothing moves
    cfg = LoopConfig(steps=2, lr=1e-2, progress=False)
    state = train(model, three_losses, cfg)
    assert state.step == 2 and not torch.equal(before["weight"], model.weight)


def test_resume_from_a_checkpoint_continues_bit_for_bit(tmp_path):
    def run(run_dir, **kw):
        model, losses = regression()
        cfg = LoopConfig(steps=6, lr=1e-2, eval_every=3, checkpoint_every=2, progress=False, **kw)
        train(model, losses, cfg, rng=torch.Generator().manual_seed(1), evaluate=lambda: {"val": 0.0},
              lr_at=lambda step: 1e-2 / (1 + step), run_dir=run_dir, resume=True, checkpoint_meta={"task": "x"})

    run(tmp_path / "straight")
    run(tmp_path / "resumed", max_minutes=1e-9)  # stops after one step, with a checkpoint
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["step"] == 1
    run(tmp_path / "resumed")
    meta = json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())
    assert meta["step"] == 6 and meta["task"] == "x"
    logged = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 3, 6]
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("opt.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_restores_a_numpy_rng_torchs_global_generator_and_the_log(tmp_path):
    """A task that draws from a numpy RandomState (normal draws leave a cached Gaussian) and from torch's global
    generator; a log line past the checkpoint (a run stopped between the two) is dropped on resume."""

    def run(run_dir, **kw):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)

        def losses(step, rng):
            x = torch.as_tensor(rng.standard_normal((5, 3)), dtype=torch.float32) + torch.randn(5, 3)
            yield model(x).pow(2).mean()

        cfg = LoopConfig(**{"steps": 5, "lr": 1e-2, "eval_every": 1, "checkpoint_every": 2, "progress": False, **kw})
        train(model, losses, cfg, rng=np.random.RandomState(3), evaluate=lambda: {"w": float(model.weight.sum())},
              run_dir=run_dir, resume=True)
        return model

    straight = run(tmp_path / "straight")
    run(tmp_path / "resumed", steps=3)  # checkpoints at 2 and at 3
    with (tmp_path / "resumed" / "log.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 4, "w": 0.0}) + "\n")
    resumed = run(tmp_path / "resumed")
    assert torch.equal(straight.weight, resumed.weight) and torch.equal(straight.bias, resumed.bias)

    def log(name):
        return [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"}
                for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]

    assert log("straight") == log("resumed") and [r["step"] for r in log("resumed")] == [1, 2, 3, 4, 5]


def test_the_device_is_auto_cpu_or_an_existing_gpu(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu") and describe_device(torch.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_model_resumes_and_is_written_as_a_cpu_model(tmp_path):
    def run(run_dir, **kw):
        model = make_tiny_model(0).cuda()
        for p in model.parameters():
            p.requires_grad_(True)
        g = torch.Generator().manual_seed(0)
        x, y, q, targets = torch.rand(4, 6, 2), torch.randn(4, 6), torch.rand(4, 3, 2), torch.randn(4, 3)

        def losses(step, rng):
            noise = 0.1 * torch.randn(4, 3, generator=rng)
            yield model.bar.nll(model(x.cuda(), y.cuda(), q.cuda()), (targets + noise).cuda()).mean()

        cfg = LoopConfig(**{"steps": 4, "lr": 1e-3, "eval_every": 1, "monitor": "nll", "patience": 5,
                            "checkpoint_every": 1, "threads": 1, "progress": False, **kw})
        train(model, losses, cfg, rng=g, evaluate=lambda: {"nll": 1.0}, run_dir=run_dir, resume=True,
              out=run_dir / "m.safetensors", card=lambda s: {"name": "m"})
        return model

    run(tmp_path / "r", steps=2)
    model = run(tmp_path / "r")
    card = json.loads((tmp_path / "r" / "m.json").read_text())
    assert torch.cuda.get_device_name() in card["hardware"] and card["steps"] == 4
    saved = load_model(tmp_path / "r" / "m.safetensors").state_dict()
    assert all(v.device.type == "cpu" and torch.equal(v, model.state_dict()[k].cpu()) for k, v in saved.items())


def test_checkpoints_need_a_torch_generator(tmp_path):
    model, _ = regression()
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="torch.Generator"):
        train(model, lambda step, rng: iter([model(x).sum()]), LoopConfig(steps=1, lr=1e-3, progress=False),
              rng=None, run_dir=tmp_path)


def test_writes_the_best_model_with_the_common_card_fields(tmp_path):
    model = make_tiny_model(0)
    for p in model.parameters():
        p.requires_grad_(True)
    x, y, q = torch.rand(4, 6, 2), torch.randn(4, 6), torch.rand(4, 3, 2)
    targets = torch.randn(4, 3)
    scripted = iter([2.0, 1.0, 3.0, 4.0])
    best = {}

    def evaluate():
        value = next(scripted)
        if value == 1.0:
            best.update(weights(model))
        return {"nll": value}

    def losses(step, rng):
        yield model.bar.nll(model(x, y, q), targets).mean()

    cfg = LoopConfig(steps=50, lr=1e-2, eval_every=1, eval_at_start=True, monitor="nll", patience=2, threads=1,
                     progress=False)
    out = tmp_path / "m.safetensors"
    state = train(model, losses, cfg, evaluate=evaluate, out=out,
                  card=lambda s: {"name": "m", "kind": "test", "curve": s.history})
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["kind"] == "test" and card["steps"] == state.step == 3
    assert card["stop_reason"] == "early stopping" and len(card["curve"]) == 4
    assert {"wall_seconds", "hardware", "python", "torch", "n_parameters"} <= card.keys()
    saved = load_model(out).state_dict()
    assert all(torch.equal(saved[k], best[k]) for k in best)
    assert not model.training
