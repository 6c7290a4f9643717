"""NAP training: episode contexts follow ``metabo.context`` (related studies under slots 1..k, then the chosen
points under slot 0), a tiny PPO run writes a model with its training log, the CPU run does not depend on how
its device was named, a resumed run repeats a straight one bit for bit, and a GPU asked for but missing is a
clear error. The GPU test runs only where torch sees one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from safetensors.torch import load_file

from conftest import make_tiny_model
from metabo.context import collate, join, related_points
from metabo.meta import align_corpus
from metabo.model.io import load_model, save_model
from metabo.normalise import ObjectiveTransform
from metabo.train import nap
from metabo.train.nap import NAPConfig, _Episodes, _Tasks, train_nap
from studies import SPACE, past_studies

TINY = dict(episodes=2, horizon=4, pool_size=12, configs_per_instance=20, aux_queries=2, max_related=8,
            related_studies=2)


def synthetic_tasks(*_args) -> tuple[_Tasks, dict]:
    """Four tasks on a two-float space in place of a YAHPO scenario's train instances."""
    corpus, _ = align_corpus(past_studies(4), SPACE)
    gen = np.random.default_rng(0)
    xs = [gen.random((30, 2)) for _ in corpus]
    return _Tasks(xs, [((x - 0.4) ** 2).sum(1) + 0.1 * k for k, x in enumerate(xs)], corpus), SPACE


@pytest.fixture
def synthetic(monkeypatch, tmp_path):
    """``train_nap`` on synthetic tasks (no YAHPO data needed); returns the base model's path."""
    monkeypatch.setattr(nap, "_load_tasks", synthetic_tasks)
    return save_model(make_tiny_model(0), tmp_path / "base.safetensors", {"name": "tiny"})


def _same_weights(a, b) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_episode_states_are_the_serving_layout():
    corpus, _ = align_corpus(past_studies(4), SPACE)
    gen = np.random.default_rng(0)
    tasks = _Tasks([gen.random((30, 2)) for _ in corpus], [gen.random(30) for _ in corpus], corpus)
    cfg = NAPConfig(episodes=3, horizon=4, pool_size=10, max_related=12, related_studies=2)
    episodes = _Episodes(tasks, cfg, np.random.RandomState(3))
    episodes.actions[:] = np.arange(4)[None] + np.arange(3)[:, None]

    rng = np.random.RandomState(3)  # the episodes' draws: instances, pools, then each one's related studies
    inst = rng.randint(len(corpus), size=3)
    for i in inst:
        rng.choice(30, size=10, replace=False)
    t = 3
    x, y, slot, mask, taken = episodes.state(t)
    contexts = []
    for k, i in enumerate(inst):
        others = [s for j, s in enumerate(corpus) if j != i]
        pick = rng.choice(len(others), size=2, replace=False)
        related = related_points([others[j] for j in pick], 12, rng)  # serving's default slots 1, 2
        own = episodes.y[k, episodes.actions[k, :t]]
        y_own = ObjectiveTransform(False, cfg.transform.for_past_values()).fit(own).transform(own)
        contexts.append(join(related, episodes.x[k, episodes.actions[k, :t]], y_own))
    for got, want in zip((x, y, slot, mask), collate(contexts)):
        assert torch.equal(got, want)
    assert (slot[:, -t:] == 0).all() and set(slot[:, :-t].unique().tolist()) == {1, 2}
    assert taken.sum(1).tolist() == [t] * 3


def _yahpo_ready() -> str | None:
    from metabo.meta import yahpo

    return yahpo.unavailable_reason("lcbench")


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_a_tiny_ppo_run_writes_a_model_and_its_log(tmp_path):
    base = save_model(make_tiny_model(0), tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = NAPConfig(iterations=2, episodes=2, horizon=3, pool_size=12, configs_per_instance=20, aux_queries=2,
                    max_related=8, related_studies=2)
    path = train_nap("lcbench", tmp_path / "nap.safetensors", base, cfg, progress=False, command="test")
    card = json.loads(path.with_suffix(".json").read_text())
    assert load_model(path).acq_head is not None
    assert card["iterations"] == card["steps"] == 2 and card["stop_reason"] == "max steps"
    assert [r["step"] for r in card["training_log"]] == [1, 2]
    assert all({"mean_return", "final_regret", "train_loss"} <= r.keys() for r in card["training_log"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto is the GPU here")
def test_cpu_and_auto_train_the_same_weights_without_a_gpu(synthetic, tmp_path):
    paths = [train_nap("synthetic", tmp_path / f"{device}.safetensors", synthetic,
                       NAPConfig(iterations=2, device=device, **TINY), progress=False) for device in ("cpu", "auto")]
    assert _same_weights(*paths)
    card = json.loads(paths[1].with_suffix(".json").read_text())
    assert "CPU" in card["hardware"] and card["nap_config"]["device"] == "auto"


def test_a_resumed_run_repeats_a_straight_one_bit_for_bit(synthetic, tmp_path):
    def run(name, iterations, resume=False):
        return train_nap("synthetic", tmp_path / f"{name}.safetensors", synthetic,
                         NAPConfig(iterations=iterations, device="cpu", **TINY), progress=False,
                         run_dir=tmp_path / name, resume=resume, checkpoint_every=1)

    straight = run("straight", 4)
    run("resumed", 2)
    saved = load_file(str(tmp_path / "resumed" / "checkpoint.safetensors"))
    assert {"rng.mt19937", "rng.pos_has_gauss", "rng.cached_gaussian", "torch_rng"} <= saved.keys()
    resumed = run("resumed", 4, resume=True)
    assert _same_weights(straight, resumed)
    assert _same_weights(tmp_path / "straight" / "checkpoint.safetensors",
                         tmp_path / "resumed" / "checkpoint.safetensors")

    def log(name):
        lines = (tmp_path / name / "log.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"} for line in lines]

    assert log("straight") == log("resumed") and [r["step"] for r in log("resumed")] == [1, 2, 3, 4]
    card = json.loads(resumed.with_suffix(".json").read_text())
    assert card["iterations"] == 4 and [r["step"] for r in card["training_log"]] == [1, 2, 3, 4]


def test_a_run_folder_is_only_continued_and_only_with_its_settings(synthetic, tmp_path):
    def run(resume, **kw):
        cfg = NAPConfig(**{"iterations": 1, "device": "cpu", **TINY, **kw})
        train_nap("synthetic", tmp_path / "m.safetensors", synthetic, cfg, progress=False, run_dir=tmp_path / "run",
                  resume=resume)

    run(False)
    with pytest.raises(ValueError, match="holds a checkpoint"):
        run(False)
    with pytest.raises(ValueError, match="nap_config.episodes"):
        run(True, episodes=3)
    run(True, iterations=2, max_minutes=5.0)  # how long it runs may change
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 2


def test_cuda_without_a_gpu_and_a_run_folder_not_to_resume_are_clear_errors(monkeypatch, tmp_path, capsys):
    from metabo.cli import main

    def one_line(argv: list[str]) -> str:
        assert main(argv) == 2  # a user error: one line and status 2, as every command's
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        return err[0]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(nap, "_load_tasks", lambda *a: pytest.fail("tasks loaded before the device was checked"))
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        train_nap("lcbench", tmp_path / "m.safetensors", tmp_path / "base.safetensors", NAPConfig(device="cuda"))
    assert re.match("metabo nap: device 'cuda' asked for, but .* sees no CUDA GPU",
                    one_line(["nap", "--yahpo", "lcbench", "--base", str(tmp_path / "base.safetensors"),
                              "--out", str(tmp_path / "m.safetensors"), "--device", "cuda", "--no-progress"]))
    assert "--resume needs the --run-dir" in one_line(
        ["nap", "--yahpo", "lcbench", "--base", "b.safetensors", "--out", "m.safetensors", "--resume"])
    assert re.match("metabo nap: pool_size 30 is too small .* needs at least 51", one_line(
        ["nap", "--yahpo", "lcbench", "--base", "b.safetensors", "--out", "m.safetensors", "--pool-size", "30"]))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.safetensors").touch()
    assert re.match("metabo nap: .*run holds a checkpoint: resume it", one_line(
        ["nap", "--yahpo", "lcbench", "--base", "b.safetensors", "--out", "m.safetensors", "--device", "cpu",
         "--run-dir", str(tmp_path / "run")]))


def test_the_cli_sets_the_schedule(monkeypatch, tmp_path, capsys):
    from metabo.cli import main

    seen = {}
    monkeypatch.setattr("metabo.cli.train_nap", lambda *a, **kw: seen.update(cfg=a[3], **kw) or Path(a[1]))
    base = save_model(make_tiny_model(0), tmp_path / "b.safetensors", {"name": "tiny"})  # the CLI loads it first
    main(["nap", "--yahpo", "lcbench", "--base", str(base), "--out", str(tmp_path / "m.safetensors"),
          "--device", "cpu", "--iterations", "7", "--episodes", "5", "--horizon", "6", "--pool-size", "40",
          "--lr", "1e-4", "--max-minutes", "3", "--seed", "2", "--run-dir", str(tmp_path / "run"), "--resume",
          "--checkpoint-every", "3", "--no-progress"])
    cfg = seen["cfg"]
    assert (cfg.iterations, cfg.episodes, cfg.horizon, cfg.pool_size, cfg.lr, cfg.max_minutes, cfg.seed,
            cfg.device) == (7, 5, 6, 40, 1e-4, 3.0, 2, "cpu")
    assert seen["resume"] and seen["checkpoint_every"] == 3 and seen["run_dir"] == str(tmp_path / "run")
    assert "training on cpu" in capsys.readouterr().out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_run_writes_a_cpu_model_and_resumes(synthetic, tmp_path):
    def run(name, iterations, resume=False):
        return train_nap("synthetic", tmp_path / f"{name}.safetensors", synthetic,
                         NAPConfig(iterations=iterations, device="cuda", **TINY), progress=False,
                         run_dir=tmp_path / name, resume=resume, checkpoint_every=1)

    run("gpu", 2)
    path = run("gpu", 3, resume=True)
    card = json.loads(path.with_suffix(".json").read_text())
    assert torch.cuda.get_device_name() in card["hardware"] and card["iterations"] == 3
    assert [r["step"] for r in card["training_log"]] == [1, 2, 3]
    assert all(np.isfinite(r["train_loss"]) for r in card["training_log"])
    model = load_model(path)
    assert model.acq_head is not None and all(p.device.type == "cpu" for p in model.parameters())
    assert "cuda_rng" in load_file(str(tmp_path / "gpu" / "checkpoint.safetensors"))
