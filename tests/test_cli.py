"""Command line: help, info, and the shipped model."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import metabo
from conftest import make_tiny_model
from metabo.acquisition import CandidateSearchConfig
from metabo.cli import main
from metabo.model import load_cached, save_model
from metabo.model.transformer import ModelConfig
from metabo.model.io import default_model_path, read_card


def _json_part(text: str) -> dict:
    return json.loads(text[text.index("{"):])


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "pretrain", "info"):
        assert cmd in out


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code != 0


def test_console_script_help():
    exe = Path(sys.executable).parent / "metabo"
    exe = str(exe) if exe.exists() else shutil.which("metabo")
    assert exe, "the `metabo` console script is not installed"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for cmd in ("demo", "pretrain", "info"):
        assert cmd in proc.stdout


def test_info_prints_the_card_of_a_given_model(tmp_path, capsys):
    model = make_tiny_model(3)
    path = save_model(model, tmp_path / "tiny.safetensors", {"name": "tiny-card", "steps": 7})
    assert main(["info", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out
    n_params = sum(p.numel() for p in model.parameters())
    assert f"{n_params:,}" in out
    card = _json_part(out)
    assert card["name"] == "tiny-card" and card["steps"] == 7 and card["config"] == model.cfg.to_dict()


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_info_on_a_broken_model_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["info", "--model", str(bad)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("metabo info: ") and "not a readable safetensors file" in line


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    from metabo.model import ModelLoadError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError):
        main(["--debug", "info", "--model", str(bad)])
    monkeypatch.setenv("METABO_DEBUG", "1")
    with pytest.raises(ModelLoadError):
        main(["info", "--model", str(bad)])


def test_a_bug_is_never_turned_into_a_user_error(monkeypatch):
    import metabo.cli as cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_cmd_info", broken)
    with pytest.raises(ZeroDivisionError):
        main(["info"])


@pytest.mark.parametrize("argv, message", [
    (["finetune", "--yahpo", "nosuch", "--out", "m.safetensors"], "unknown YAHPO scenario 'nosuch'"),
    (["finetune", "--yahpo", "lcbench", "--yahpo", "rbv2_rpart", "--out", "m.safetensors"], "one scenario"),
    (["finetune", "--file", "missing.csv", "--out", "m.safetensors"], "missing.csv"),
    (["finetune", "--storage", "sqlite:///missing.db", "--out", "m.safetensors"], "missing.db"),
    (["finetune", "--file", "past.csv", "--out", "m.pt"], "--out must be a .safetensors path"),
    (["finetune", "--file", "past.csv", "--base", "none.safetensors", "--out", "m.safetensors"], "no such model"),
    (["nap", "--yahpo", "nosuch", "--base", "b.safetensors", "--out", "m.safetensors"], "unknown YAHPO scenario"),
    (["nap", "--yahpo", "lcbench", "--base", "none.safetensors", "--out", "m.safetensors"], "no such model"),
    (["pretrain", "--out", "run", "--d-model", "30"], "multiple of --heads"),
    (["pretrain", "--out", "run", "--init", "none.safetensors"], "no such model"),
    (["info", "--model", "none.safetensors"], "no such model file"),
    (["card", "none.safetensors"], "no such model file"),
    (["demo", "--out", "afile", "--trials", "1"], "afile"),
])
def test_user_errors_are_one_line_and_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file where a folder should be")
    (tmp_path / "past.csv").write_text("x,value\n0.1,1.0\n")
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"metabo {argv[0]}: ") and message in line


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--out", "r", "--steps", "0"], "--steps: must be at least 1"),
    (["pretrain", "--out", "r", "--threads", "0"], "--threads: must be at least 1"),
    (["pretrain", "--out", "r", "--lr", "-1"], "--lr: must be a finite number above 0"),
    (["finetune", "--out", "m.safetensors", "--max-steps", "x"], "--max-steps: not an integer"),
    (["nap", "--yahpo", "lcbench", "--base", "b", "--out", "o", "--episodes", "0"], "--episodes: must be at least 1"),
    (["demo", "--trials", "0"], "--trials: must be at least 1"),
    (["nosuch"], "invalid choice"),
])
def test_usage_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    line = _one_error_line(capsys)
    assert message in line and line.endswith("--help)")


def test_card_command_stamps_a_card_without_a_hash(tmp_path, capsys):
    from metabo.model import ModelLoadError, load_model
    from metabo.model.io import card_path, file_sha256

    path = save_model(make_tiny_model(3), tmp_path / "old.safetensors", {"name": "old"})
    card = json.loads(card_path(path).read_text())
    del card["sha256"], card["sha256_by"]  # as an older metabo wrote it
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="metabo card"):
        load_model(path)
    assert main(["card", str(path)]) == 0
    stamped = json.loads(card_path(path).read_text())
    assert stamped["sha256"] == file_sha256(path) and stamped["sha256_by"] == f"metabo card {path}"
    assert stamped["name"] == "old"
    load_model(path)


def test_info_default_model(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    card = _json_part(out)
    assert card["format"] == "metabo-tnp"
    assert card == read_card(default_model_path())


def test_shipped_model_loads_and_drives_the_sampler():
    model = load_cached()
    card = read_card(default_model_path())
    assert card and ModelConfig.from_dict(card["config"]) == model.cfg  # cards predate newer config fields
    assert model.cfg.max_dims >= 8
    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0, search=CandidateSearchConfig(n_candidates=64)))
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2 + t.suggest_int("n", 0, 3), n_trials=6)
    assert "metabo_predicted_mean" in study.trials[-1].user_attrs


def test_demo_command_is_wired():
    module = importlib.import_module("metabo.demo")
    assert callable(module.run_demo)
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0


def test_finetune_command_needs_a_source_and_is_wired(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["finetune", "--help"])
    assert exc.value.code == 0
    capsys.readouterr()
    assert main(["finetune", "--out", str(tmp_path / "m.safetensors")]) == 2  # a user error: status 2, one line
    assert _one_error_line(capsys).startswith("metabo finetune: give past studies with --storage URL")


def test_finetune_command_from_a_storage(tmp_path, tiny_model):
    storage = f"sqlite:///{tmp_path / 'past.db'}"
    for k in range(4):
        study = optuna.create_study(storage=storage, study_name=f"past-{k}")
        study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.1 * k) ** 2, n_trials=12)
    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    out = tmp_path / "ft.safetensors"
    assert main(["finetune", "--storage", storage, "--study-pattern", "past-*", "--out", str(out), "--base",
                 str(base), "--max-steps", "3", "--threads", "1", "--no-progress"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["corpus"]["n_studies"] == 4 and card["command"].startswith("metabo ")
    assert card["stop_reason"] == "max steps"
