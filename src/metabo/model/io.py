"""Saving and loading models: safetensors weights plus a JSON model card. Never pickles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from metabo.model.transformer import ModelConfig, TNPModel

FORMAT_NAME = "metabo-tnp"
FORMAT_VERSION = "1"


class ModelLoadError(RuntimeError):
    """A model file is missing, not safetensors, truncated, of another format/version, or inconsistent."""


def card_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_model(model: TNPModel, path: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors) and its card ``path.with_suffix('.json')``."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files must end in .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": json.dumps(model.cfg.to_dict())}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)  # atomic: a crash never leaves a half-written model behind
    full_card = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": model.cfg.to_dict()}
    full_card.update(card or {})
    card_path(path).write_text(json.dumps(full_card, indent=2, sort_keys=False) + "\n")
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    cp = card_path(path)
    if not cp.exists():
        return {}
    try:
        return json.loads(cp.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{cp}: model card is not valid JSON ({exc})") from exc


def load_model(path: str | Path) -> TNPModel:
    """Load a model, refusing anything that is not a complete metabo safetensors file of a known version."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file")
    if path.suffix != ".safetensors":
        raise ModelLoadError(f"{path}: model files must be .safetensors (pickled checkpoints are never loaded)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file (truncated or another format?): {exc}") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise ModelLoadError(f"{path}: not a metabo model (format={metadata.get('format')!r})")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: model format version {metadata.get('format_version')!r} is not supported "
            f"(this metabo reads version {FORMAT_VERSION})"
        )
    try:
        cfg = ModelConfig.from_dict(json.loads(metadata["config"]))
        model = TNPModel(cfg, state["bar.borders"])
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: weights do not match the stored configuration: {exc}") from exc
    model.eval()
    return model


def with_task_slots(model: TNPModel, task_slots: int, max_dims: int | None = None,
                    acquisition_head: bool | None = None) -> TNPModel:
    """A trainable copy of ``model`` with ``task_slots`` task slots and (optionally) a wider input.

    New task embeddings start at zero and new input columns with zero weights, so with the same input width the
    copy predicts exactly as ``model`` does until it is trained (fine-tuning and multi-task pretraining start
    here). A wider input also changes the distance bias, so a widened copy needs fine-tuning. A new learned
    acquisition head (``acquisition_head=True``) starts at random.
    """
    import copy

    cfg = copy.deepcopy(model.cfg)
    if task_slots < cfg.task_slots:
        raise ValueError(f"cannot shrink task slots from {cfg.task_slots} to {task_slots}")
    cfg.task_slots = task_slots
    if max_dims is not None:
        if max_dims < cfg.max_dims:
            raise ValueError(f"cannot narrow the model's input from {cfg.max_dims} to {max_dims} dimensions")
        cfg.max_dims = max_dims
    if acquisition_head is not None:
        cfg.acquisition_head = acquisition_head
    new = TNPModel(cfg, model.bar.borders.detach().clone())
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    old_w = state["embed_x.0.weight"]
    if old_w.shape[1] < cfg.max_dims:
        state["embed_x.0.weight"] = torch.cat([old_w, old_w.new_zeros(old_w.shape[0], cfg.max_dims - old_w.shape[1])], 1)
    if "embed_task.weight" in state and new.embed_task is not None:
        w = new.embed_task.weight.detach().clone()
        w[: state["embed_task.weight"].shape[0]] = state["embed_task.weight"]
        state["embed_task.weight"] = w
    if not cfg.acquisition_head:
        state = {k: v for k, v in state.items() if not k.startswith("acq_head.")}
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or {m for m in missing if not m.startswith("acq_head.")} - {"embed_task.weight"}:
        raise ModelLoadError(f"cannot copy weights: missing {missing}, unexpected {unexpected}")
    for p in new.parameters():
        p.requires_grad_(True)
    new.train()
    return new


def default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"


def multitask_model_path() -> Path:
    """The shipped multi-task model (task slots for related studies; ``TNPSampler(related=...)``'s default)."""
    return default_model_path().with_name("multitask.safetensors")


_CACHE: dict[str, TNPModel] = {}


def load_cached(path: str | Path | None = None) -> TNPModel:
    """Load a model once per process (keyed by resolved path)."""
    key = str(Path(path).resolve()) if path is not None else str(default_model_path())
    if key not in _CACHE:
        model = load_model(key)
        for p in model.parameters():
            p.requires_grad_(False)
        _CACHE[key] = model
    return _CACHE[key]
