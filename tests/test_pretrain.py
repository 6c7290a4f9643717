"""Pretraining (its task on ``metabo.train.loop``): a few steps write every artefact; an interrupted run resumes
to the same weights bit for bit; the model's inputs are laid out by ``metabo.context``."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import metabo.train.pretrain as pretrain_mod
from metabo.context import Context, join
from metabo.model import load_model
from metabo.priors import GPPrior, PriorConfig
from metabo.train.pretrain import TrainConfig, model_inputs, normalise_batch, pretrain


def tiny_train_config(**kw) -> TrainConfig:
    from metabo.model import ModelConfig

    base = dict(
        steps=3, warmup=2, tokens_per_batch=256, n_query=8, max_train_context=12, small_context_max=6,
        checkpoint_every=1000, eval_every=1000, snapshot_every=2, threads=1, seed=5,
        model=ModelConfig(max_dims=4, d_model=32, n_layers=2, n_heads=4, d_ff=64, n_buckets=50, max_context=20),
        prior=PriorConfig(max_dims=4),
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs sharing one (deterministic) border computation, the slow part of a tiny run."""
    root = tmp_path_factory.mktemp("pretrain")
    original = pretrain_mod.compute_borders
    cache: dict = {}

    def cached(prior, cfg, n_buckets, seed):
        key = (n_buckets, seed, repr(cfg.prior), cfg.max_train_context, cfg.small_context_max, cfg.small_context_prob)
        if key not in cache:
            cache[key] = original(prior, cfg, n_buckets, seed)
        return cache[key].clone()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pretrain_mod, "compute_borders", cached)
        straight = pretrain(tiny_train_config(), root / "straight", progress=False, command="test")
        # interrupted after its first step by the time limit, then resumed to the end
        pretrain(tiny_train_config(max_minutes=1e-9), root / "resumed", progress=False)
        interrupted_meta = json.loads((root / "resumed" / "checkpoint.json").read_text())
        interrupted_card = json.loads((root / "resumed" / "model.json").read_text())
        resumed = pretrain(tiny_train_config(), root / "resumed", resume=True, progress=False)
    return {"straight": straight, "resumed": resumed, "interrupted_meta": interrupted_meta,
            "interrupted_card": interrupted_card}


def test_writes_all_artefacts(runs):
    path: Path = runs["straight"]
    run_dir = path.parent
    assert path == run_dir / "model.safetensors"
    for name in ("checkpoint.safetensors", "checkpoint.json", "log.jsonl", "model.safetensors", "model.json"):
        assert (run_dir / name).exists(), name
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    assert meta["step"] == 3
    lines = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [3]
    assert all(torch.isfinite(torch.tensor(v)) for v in lines[-1]["heldout_nll"].values())
    card = json.loads((run_dir / "model.json").read_text())
    assert card["steps"] == 3 and card["command"] == "test" and card["seed"] == 5
    assert card["stop_reason"] == "max steps" and card["train_config"]["steps"] == 3
    assert card["config"]["d_model"] == 32 and card["prior"]["name"] == "gp"
    assert card["heldout_nll"] == lines[-1]["heldout_nll"]
    model = load_model(path)
    assert model.cfg.n_buckets == 50
    assert (model.bar.borders[1:] > model.bar.borders[:-1]).all()


def test_snapshots(runs):
    a = runs["straight"].parent / "snapshots" / "step000002.safetensors"
    b = runs["resumed"].parent / "snapshots" / "step000002.safetensors"
    assert a.exists() and b.exists()
    assert json.loads(a.with_suffix(".json").read_text())["steps"] == 2
    assert len(list(a.parent.glob("*.safetensors"))) == 1
    sa, sb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["head.2.weight"], load_file(str(runs["straight"]))["head.2.weight"])  # step 2 != step 3


def test_interrupted_run_checkpoints(runs):
    assert runs["interrupted_meta"]["step"] == 1
    assert runs["interrupted_card"]["steps"] == 1
    assert runs["interrupted_card"]["stop_reason"] == "time limit (max_minutes)"


def test_resume_continues_step_count_and_is_bit_exact(runs):
    run_dir = runs["resumed"].parent
    assert json.loads((run_dir / "checkpoint.json").read_text())["step"] == 3
    assert json.loads((run_dir / "model.json").read_text())["steps"] == 3
    steps = [json.loads(l)["step"] for l in (run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 3]  # appended, not restarted
    a = load_file(str(runs["straight"]))
    b = load_file(str(runs["resumed"]))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the optimiser state too
    ca = load_file(str(runs["straight"].parent / "checkpoint.safetensors"))
    cb = load_file(str(run_dir / "checkpoint.safetensors"))
    for k in ca:
        assert torch.equal(ca[k], cb[k]), k


def test_prior_batch_shapes_and_determinism():
    prior = GPPrior(PriorConfig(max_dims=5))
    a = prior.sample(3, 7, 4, torch.Generator().manual_seed(1))
    b = prior.sample(3, 7, 4, torch.Generator().manual_seed(1))
    assert a.x_ctx.shape == (3, 7, 5) and a.y_ctx.shape == (3, 7)
    assert a.x_qry.shape == (3, 4, 5) and a.y_qry.shape == (3, 4)
    assert ((a.x_ctx >= 0) & (a.x_ctx <= 1)).all()
    assert ((a.n_dims >= 1) & (a.n_dims <= 5)).all()
    for x, y in ((a.x_ctx, b.x_ctx), (a.y_ctx, b.y_ctx), (a.y_qry, b.y_qry)):
        assert torch.equal(x, y)
    assert torch.isfinite(a.y_ctx).all() and torch.isfinite(a.y_qry).all()
    empty = prior.sample(2, 0, 3, torch.Generator().manual_seed(2))
    assert empty.x_ctx.shape == (2, 0, 5) and torch.isfinite(empty.y_qry).all()


def test_model_inputs_lay_out_each_task_as_serving_does():
    g = torch.Generator().manual_seed(1)
    batch = GPPrior(PriorConfig(max_dims=3)).sample(3, 4, 5, g, n_related=9, n_related_studies=3)
    x, y, task, y_q = model_inputs(batch, g, task_slots=8)
    y_own, y_q_expected = normalise_batch(batch)
    assert torch.equal(y_q, y_q_expected)
    for b in range(3):
        related = Context(batch.x_rel[b].double().numpy(), batch.y_rel[b].double().numpy(), task[b, :9].numpy())
        served = join(related, batch.x_ctx[b].double().numpy(), y_own[b].double().numpy())
        assert torch.equal(x[b], torch.as_tensor(served.x, dtype=torch.float32))
        assert torch.equal(y[b], torch.as_tensor(served.y, dtype=torch.float32))
        assert torch.equal(task[b], torch.as_tensor(served.task))
        # one distinct slot per related study, never the own slot
        slots = [set(task[b, :9][batch.rel_study[b] == s].tolist()) for s in range(3)]
        assert all(len(s) == 1 for s in slots) and len(set.union(*slots)) == 3 and 0 not in set.union(*slots)
    single = GPPrior(PriorConfig(max_dims=3)).sample(2, 4, 5, g)
    x, y, task, _ = model_inputs(single, g, task_slots=8)
    assert task is None and torch.equal(x, single.x_ctx) and np.allclose(y.mean(1).numpy(), 0.0, atol=1e-6)


def test_init_widens_the_starting_model_to_the_priors_input_width(runs, tmp_path):
    base = Path(runs["straight"])
    cfg = tiny_train_config(init=str(base), prior=PriorConfig(max_dims=6), steps=1, snapshot_every=0)
    out = pretrain(cfg, tmp_path / "wide", progress=False)
    narrow, wide = load_model(base), load_model(out)
    assert narrow.cfg.max_dims == 4 and wide.cfg.max_dims == 6
    assert torch.equal(wide.bar.borders, narrow.bar.borders)


def test_pretraining_runs_on_the_device_asked_for(tmp_path, monkeypatch):
    import metabo.train.loop as loop

    with pytest.raises(ValueError, match="sees no CUDA GPU") if not torch.cuda.is_available() else nullcontext():
        pretrain(tiny_train_config(steps=1, snapshot_every=0, device="cuda"), tmp_path / "gpu", progress=False)
    # "auto" on a machine without a GPU trains on the CPU, as "cpu" does, and writes the same model
    monkeypatch.setattr(loop.torch.cuda, "is_available", lambda: False)
    auto = load_model(pretrain(tiny_train_config(steps=2, snapshot_every=0), tmp_path / "auto", progress=False))
    cpu = load_model(pretrain(tiny_train_config(steps=2, snapshot_every=0, device="cpu"), tmp_path / "cpu",
                              progress=False))
    for (name, a), (_, b) in zip(auto.state_dict().items(), cpu.state_dict().items()):
        assert torch.equal(a, b), name


def test_bfloat16_training_runs_its_forward_passes_in_bfloat16_and_keeps_float32_weights(tmp_path, monkeypatch):
    import metabo.model.bar_distribution as bar_module

    seen: list[torch.dtype] = []
    log_prob = bar_module.BarDistribution.log_prob

    def spy(self, logits, y):
        seen.append(logits.dtype)
        out = log_prob(self, logits, y)
        assert out.dtype == torch.float32  # the loss is computed in float32 whatever the forward pass used
        return out

    monkeypatch.setattr(bar_module.BarDistribution, "log_prob", spy)
    cfg = tiny_train_config(steps=2, snapshot_every=0, precision="bf16", eval_every=0)
    bf16 = load_model(pretrain(cfg, tmp_path / "bf16", progress=False))
    # the two training steps ran in bfloat16; the held-out evaluation after them in float32
    assert seen[:2] == [torch.bfloat16] * 2 and len(seen) > 2 and set(seen[2:]) == {torch.float32}
    fp32 = load_model(pretrain(tiny_train_config(steps=2, snapshot_every=0, eval_every=0), tmp_path / "fp32",
                               progress=False))
    assert all(p.dtype == torch.float32 and bool(torch.isfinite(p).all()) for p in bf16.state_dict().values())
    assert any(not torch.equal(a, b) for a, b in zip(bf16.state_dict().values(), fp32.state_dict().values()))
    assert json.loads((tmp_path / "bf16" / "model.json").read_text())["train_config"]["precision"] == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        pretrain(tiny_train_config(steps=1, precision="fp16"), tmp_path / "fp16", progress=False)
