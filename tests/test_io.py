"""Model files: safetensors + JSON card round trip, and refusal of anything else with ModelLoadError."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import make_tiny_model
from metabo.model import ModelLoadError, load_cached, load_model, save_model
from metabo.model.io import (FORMAT_NAME, FORMAT_VERSION, SAVED_BY, card_path, default_model_path, file_sha256,
                             read_card, stamp_card)


@pytest.fixture(scope="module")
def model():
    return make_tiny_model(2)


@pytest.fixture
def saved(model, tmp_path) -> Path:
    return save_model(model, tmp_path / "tiny.safetensors", {"name": "tiny", "steps": 3})


def _outputs(m):
    g = torch.Generator().manual_seed(0)
    x, y, xq = torch.rand(2, 6, 3, generator=g), torch.randn(2, 6, generator=g), torch.rand(2, 4, 3, generator=g)
    with torch.no_grad():
        return m(x, y, xq)


def test_round_trip_identical_outputs(model, saved):
    loaded = load_model(saved)
    assert loaded.cfg == model.cfg
    assert not loaded.training
    torch.testing.assert_close(_outputs(loaded), _outputs(model), atol=0, rtol=0)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_card_written(model, saved):
    cp = card_path(saved)
    assert cp == saved.with_suffix(".json") and cp.exists()
    card = json.loads(cp.read_text())
    assert card["format"] == FORMAT_NAME and card["format_version"] == FORMAT_VERSION
    assert card["config"] == model.cfg.to_dict()
    assert card["name"] == "tiny" and card["steps"] == 3
    assert card["sha256"] == file_sha256(saved) and card["sha256_by"] == SAVED_BY
    assert read_card(saved) == card
    assert not list(saved.parent.glob("*.tmp"))  # no temporary files left behind


def test_read_card_missing_and_corrupt(tmp_path, saved):
    assert read_card(tmp_path / "nothing.safetensors") == {}
    card_path(saved).write_text("{not json")
    with pytest.raises(ModelLoadError):
        read_card(saved)


def test_save_refuses_other_suffix(model, tmp_path):
    with pytest.raises(ValueError):
        save_model(model, tmp_path / "model.pt")


def test_save_overwrites_atomically(model, tmp_path):
    p = save_model(model, tmp_path / "sub" / "m.safetensors")
    other = make_tiny_model(9)
    save_model(other, p)
    torch.testing.assert_close(_outputs(load_model(p)), _outputs(other), atol=0, rtol=0)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("keep", [0, 4, 8, 100, 0.5, -1])
def test_truncated_file(saved, tmp_path, keep):
    raw = saved.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (len(raw) + keep if keep < 0 else keep)
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(raw[:n])
    with pytest.raises(ModelLoadError):
        load_model(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "random.safetensors"
    bad.write_bytes(os.urandom(10_000))
    with pytest.raises(ModelLoadError):
        load_model(bad)


def test_torch_pickle_renamed(model, tmp_path):
    bad = tmp_path / "pickled.safetensors"
    torch.save(model.state_dict(), bad)
    with pytest.raises(ModelLoadError):
        load_model(bad)
    plain = tmp_path / "plain_pickle.safetensors"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelLoadError):
        load_model(plain)


def test_wrong_suffix_refused_even_if_valid(saved, tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(saved.read_bytes())  # a perfectly good safetensors file, but named like a pickle
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_model(pt)


def test_directory_refused(tmp_path):
    d = tmp_path / "dir.safetensors"
    d.mkdir()
    with pytest.raises(ModelLoadError):
        load_model(d)


def _resave(saved: Path, dest: Path, metadata: dict[str, str], state_edit=None) -> Path:
    state = load_file(str(saved))
    if state_edit:
        state = state_edit(state)
    save_file(state, str(dest), metadata=metadata)
    return dest


def _meta(model, **kw):
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": json.dumps(model.cfg.to_dict())}
    meta.update(kw)
    return {k: v for k, v in meta.items() if v is not None}


def test_resaved_with_same_metadata_loads_once_its_card_is_stamped(model, saved, tmp_path):
    p = _resave(saved, tmp_path / "same.safetensors", _meta(model))
    with pytest.raises(ModelLoadError, match="no model card.*metabo card"):
        load_model(p)
    card = stamp_card(p, by="the test")
    assert card["sha256"] == file_sha256(p) and card["sha256_by"] == "the test"
    assert card["config"] == model.cfg.to_dict()
    torch.testing.assert_close(_outputs(load_model(p)), _outputs(model), atol=0, rtol=0)


@pytest.mark.parametrize("version", ["0", "2", "1.0", ""])
def test_wrong_format_version(model, saved, tmp_path, version):
    p = _resave(saved, tmp_path / "v.safetensors", _meta(model, format_version=version))
    with pytest.raises(ModelLoadError, match="version"):
        load_model(p)


def test_missing_format_version(model, saved, tmp_path):
    p = _resave(saved, tmp_path / "v.safetensors", _meta(model, format_version=None))
    with pytest.raises(ModelLoadError):
        load_model(p)


@pytest.mark.parametrize("fmt", [None, "something-else"])
def test_wrong_format_name(model, saved, tmp_path, fmt):
    p = _resave(saved, tmp_path / "f.safetensors", _meta(model, format=fmt))
    with pytest.raises(ModelLoadError, match="not a metabo model"):
        load_model(p)


def test_plain_safetensors_without_metadata(saved, tmp_path):
    p = tmp_path / "plain.safetensors"
    save_file(load_file(str(saved)), str(p))
    with pytest.raises(ModelLoadError):
        load_model(p)


@pytest.mark.parametrize(
    "config",
    [
        '{"d_model": 64}',  # weights of another shape
        '{"n_buckets": 10}',
        '{"bogus_key": 1}',
        "not json",
    ],
)
def test_inconsistent_config(model, saved, tmp_path, config):
    base = model.cfg.to_dict()
    try:
        cfg = {**base, **json.loads(config)}
        config = json.dumps(cfg)
    except json.JSONDecodeError:
        pass
    p = _resave(saved, tmp_path / "c.safetensors", _meta(model, config=config))
    with pytest.raises(ModelLoadError):
        load_model(p)


def test_missing_config(model, saved, tmp_path):
    p = _resave(saved, tmp_path / "c.safetensors", _meta(model, config=None))
    with pytest.raises(ModelLoadError):
        load_model(p)


@pytest.mark.parametrize("config", ["null", "[]", "3", {"d_model": "big"}])
def test_malformed_config_type(model, saved, tmp_path, config):
    if isinstance(config, dict):
        config = json.dumps({**model.cfg.to_dict(), **config})
    p = _resave(saved, tmp_path / "c.safetensors", _meta(model, config=config))
    with pytest.raises(ModelLoadError):
        load_model(p)


@pytest.mark.parametrize("edit", ["drop_borders", "extra_tensor", "wrong_shape", "bad_borders"])
def test_inconsistent_weights(model, saved, tmp_path, edit):
    def mutate(state):
        state = dict(state)
        if edit == "drop_borders":
            del state["bar.borders"]
        elif edit == "extra_tensor":
            state["unexpected.weight"] = torch.zeros(3)
        elif edit == "wrong_shape":
            key = next(k for k in state if k.endswith("weight") and state[k].ndim == 2)
            state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
        elif edit == "bad_borders":
            state["bar.borders"] = torch.zeros_like(state["bar.borders"])
        return state

    p = _resave(saved, tmp_path / "w.safetensors", _meta(model), mutate)
    with pytest.raises(ModelLoadError):
        load_model(p)


def test_load_cached_reuses_and_freezes(saved):
    a = load_cached(saved)
    b = load_cached(str(saved))
    assert a is b
    assert not any(p.requires_grad for p in a.parameters())


def test_widened_multitask_model_round_trips(model, tmp_path):
    from metabo.model.io import with_task_slots

    wide = with_task_slots(model, 8, max_dims=model.cfg.max_dims + 3)
    path = save_model(wide, tmp_path / "wide.safetensors", {"name": "wide"})
    loaded = load_model(path)
    assert loaded.cfg.task_slots == 8 and loaded.cfg.max_dims == model.cfg.max_dims + 3
    assert loaded.multi_task and not model.multi_task
    x, y, task = torch.rand(1, 5, 4), torch.randn(1, 5), torch.tensor([[0, 1, 2, 0, 7]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, y, x[:, :3], ctx_task=task), wide.eval()(x, y, x[:, :3], ctx_task=task))


# ---------------------------------------------------------------------------- integrity: finite weights, the card

def _card_for(p: Path, saved: Path, **edits) -> Path:
    """Give ``p`` the card of ``saved`` with the hash of ``p`` itself, then apply ``edits`` (None: drop the key)."""
    card = {**read_card(saved), "sha256": file_sha256(p), **edits}
    card_path(p).write_text(json.dumps({k: v for k, v in card.items() if v is not None}))
    return p


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_refused(model, saved, tmp_path, bad):
    def poison(state):
        key = next(k for k in state if k.endswith("weight") and state[k].ndim == 2)
        state = dict(state)
        state[key] = state[key].clone()
        state[key][0, 0] = bad
        return state

    p = _card_for(_resave(saved, tmp_path / "nan.safetensors", _meta(model), poison), saved)
    with pytest.raises(ModelLoadError, match="non-finite"):
        load_model(p)
    with pytest.raises(ModelLoadError, match="non-finite"):
        stamp_card(p, by="test", force=True)  # stamping never vouches for broken weights


def test_missing_card_refused_with_how_to_make_one(saved):
    card_path(saved).unlink()
    with pytest.raises(ModelLoadError, match=f"no model card.*`metabo card {saved}`"):
        load_model(saved)


@pytest.mark.parametrize("edits, message", [
    ({"format": "other"}, "not a metabo model card"),
    ({"format": None}, "not a metabo model card"),
    ({"format_version": "2"}, "card version"),
    ({"config": None}, "architecture"),
    ({"config": {"bogus": 1}}, "architecture"),
    ({"config": "not a dict"}, "architecture"),
    ({"sha256": None}, "no sha256.*metabo card"),
    ({"sha256": "0" * 64}, "differs from the one in its card"),
    ({"sha256": 12}, "no sha256"),
])
def test_card_checked_on_load(saved, tmp_path, edits, message):
    _card_for(saved, saved, **edits)
    with pytest.raises(ModelLoadError, match=message):
        load_model(saved)


def test_card_of_another_architecture_refused(model, saved):
    _card_for(saved, saved, config={**model.cfg.to_dict(), "d_model": model.cfg.d_model * 2})
    with pytest.raises(ModelLoadError, match="another architecture"):
        load_model(saved)


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", "null"])
def test_card_that_is_not_a_json_object_refused(saved, text):
    card_path(saved).write_text(text)
    with pytest.raises(ModelLoadError, match="card"):
        load_model(saved)


def test_weights_changed_after_the_card_was_written(model, saved):
    other = make_tiny_model(5)
    card = card_path(saved).read_text()
    save_model(other, saved)
    card_path(saved).write_text(card)  # the old card, hash of the old weights
    with pytest.raises(ModelLoadError, match="changed or was corrupted"):
        load_model(saved)


def test_caller_cannot_forge_the_hash_or_format(model, tmp_path):
    p = save_model(model, tmp_path / "m.safetensors", {"sha256": "0" * 64, "format": "x", "sha256_by": "me"})
    assert read_card(p)["sha256"] == file_sha256(p) and read_card(p)["sha256_by"] == SAVED_BY
    load_model(p)


def test_stamp_card_is_idempotent_and_guards_a_recorded_hash(model, saved):
    before = card_path(saved).read_text()
    assert stamp_card(saved, by="again")["sha256_by"] == SAVED_BY  # already right: left as it was
    assert card_path(saved).read_text() == before
    _card_for(saved, saved, sha256="f" * 64)
    with pytest.raises(ModelLoadError, match="--force"):
        stamp_card(saved, by="test")
    assert stamp_card(saved, by="forced", force=True)["sha256"] == file_sha256(saved)
    load_model(saved)


def test_stamp_card_adds_the_hash_keeping_every_other_field(saved):
    card = read_card(saved)
    _card_for(saved, saved, sha256=None, sha256_by=None)
    stamped = stamp_card(saved, by="metabo card x")
    assert stamped == {**card, "sha256_by": "metabo card x"}
    assert list(stamped)[-2:] == ["sha256", "sha256_by"]


def test_load_cached_hashes_once(saved, monkeypatch):
    from metabo.model import io

    calls = []
    real = io.file_sha256
    monkeypatch.setattr(io, "file_sha256", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(io, "_CACHE", {})
    for _ in range(3):
        load_cached(saved)
    assert len(calls) == 1


SHIPPED = sorted(default_model_path().parent.glob("*.safetensors"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_models_pass_every_check_and_name_the_stamping_command(path):
    load_model(path)
    card = read_card(path)
    assert card["sha256"] == file_sha256(path)
    assert card["sha256_by"] == f"metabo card src/metabo/weights/{path.name}"
