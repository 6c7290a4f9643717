"""Saving and loading models: safetensors weights plus a JSON model card. Never pickles.

Every model file ``name.safetensors`` has a card ``name.json`` beside it. ``load_model`` checks both: the
weights (a metabo safetensors file of a known version, every tensor finite, shapes matching the stored
configuration) and the card (same format, version and architecture as the weights, and the SHA-256 of the
weights file it records). ``save_model`` writes the hash; ``stamp_card`` (``metabo card PATH``) adds it to a card
written without one, or writes a minimal card for weights that came without any.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from metabo.model.transformer import ModelConfig, TNPModel

FORMAT_NAME = "metabo-tnp"
FORMAT_VERSION = "1"
SAVED_BY = "metabo.model.io.save_model, when the weights were written"
_CARD_KEYS = ("format", "format_version", "config", "sha256", "sha256_by")  # written by metabo, never copied in


class ModelLoadError(RuntimeError):
    """A model file is missing, not safetensors, truncated, of another format/version, or inconsistent."""


def card_path(weights_path: str | Path) -> Path:
    """The card of a weights file: the same path with ``.json`` for ``.safetensors``."""
    return Path(weights_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_card(path: Path, card: dict[str, Any]) -> None:
    cp = card_path(path)
    tmp = cp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    tmp.replace(cp)


def save_model(model: TNPModel, path: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors) and its card ``path.with_suffix('.json')`` (with the weights' SHA-256)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files must end in .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": json.dumps(model.cfg.to_dict())}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata=metadata)
    sha256 = file_sha256(tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written model behind
    full_card = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": model.cfg.to_dict()}
    full_card.update({k: v for k, v in (card or {}).items() if k not in _CARD_KEYS})
    full_card.update(sha256=sha256, sha256_by=SAVED_BY)
    _write_card(path, full_card)
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """The card of a weights file as a dict (``{}`` when there is none); not checked (see ``load_model``)."""
    cp = card_path(path)
    if not cp.exists():
        return {}
    try:
        card = json.loads(cp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{cp}: model card is not valid JSON ({exc})") from exc
    except OSError as exc:
        raise ModelLoadError(f"{cp}: cannot read the model card ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelLoadError(f"{cp}: model card is not a JSON object")
    return card


def _load_weights(path: Path) -> TNPModel:
    """The model in a weights file, after every check of the file itself (not of its card)."""
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
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ModelLoadError(f"{path}: tensor {name!r} has {bad} non-finite value(s) (NaN or inf): the weights "
                                 "are corrupt or their training diverged")
    try:
        cfg = ModelConfig.from_dict(json.loads(metadata["config"]))
        model = TNPModel(cfg, state["bar.borders"])
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: weights do not match the stored configuration: {exc}") from exc
    return model


def _no_card_message(path: Path) -> str:
    return (f"{path}: no model card {card_path(path).name} beside it (metabo writes one with every model it "
            f"saves); if you trust these weights, write one with `metabo card {path}`")


def _check_card(path: Path, card: dict[str, Any], cfg: ModelConfig, check_hash: bool = True) -> None:
    """Refuse a card of another format, version or architecture than the weights, or whose hash differs."""
    cp = card_path(path)
    if card.get("format") != FORMAT_NAME:
        raise ModelLoadError(f"{cp}: not a metabo model card (format={card.get('format')!r})")
    if card.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{cp}: model card version {card.get('format_version')!r} is not supported "
                             f"(this metabo reads version {FORMAT_VERSION})")
    try:
        card_cfg = ModelConfig.from_dict(card["config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{cp}: the card has no valid architecture ('config'): {exc}") from exc
    if card_cfg != cfg:
        raise ModelLoadError(f"{cp}: the card describes another architecture than the weights in {path.name} "
                             f"(card {card_cfg.to_dict()}, weights {cfg.to_dict()})")
    if not check_hash:
        return
    recorded = card.get("sha256")
    if not isinstance(recorded, str):
        raise ModelLoadError(f"{cp}: the card records no sha256 of the weights (written by an older metabo?); if "
                             f"you trust these weights, add it with `metabo card {path}`")
    actual = file_sha256(path)
    if actual != recorded.lower():
        raise ModelLoadError(f"{path}: the weights' sha256 {actual[:16]}... differs from the one in its card "
                             f"({recorded[:16]}...): the file changed or was corrupted after the card was written")


def load_model(path: str | Path) -> TNPModel:
    """Load a model, refusing anything that is not a complete metabo safetensors file of a known version, with
    finite weights and a matching card (format, version, architecture and the weights' SHA-256)."""
    path = Path(path)
    model = _load_weights(path)
    if not card_path(path).exists():
        raise ModelLoadError(_no_card_message(path))
    _check_card(path, read_card(path), model.cfg)
    model.eval()
    return model


def stamp_card(path: str | Path, by: str, force: bool = False) -> dict[str, Any]:
    """Record the SHA-256 of the weights at ``path`` in their card (``sha256``, and ``sha256_by``: the command
    that stamped it), after checking the weights and the card's format, version and architecture.

    A card that already records another hash is left alone unless ``force`` (the weights changed after it was
    written: only stamp weights you trust). Weights without a card get a minimal one (format, version, config,
    name). Returns the card as written.
    """
    path = Path(path)
    model = _load_weights(path)
    card = read_card(path)
    sha256 = file_sha256(path)
    if card:
        _check_card(path, card, model.cfg, check_hash=False)
        recorded = card.get("sha256")
        if isinstance(recorded, str) and recorded.lower() != sha256 and not force:
            raise ModelLoadError(f"{card_path(path)}: records sha256 {recorded[:16]}... but the weights' is "
                                 f"{sha256[:16]}...; pass --force to record the new hash if you trust the weights")
        if recorded == sha256:
            return card  # already stamped: the card stays as it is
    else:
        card = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": model.cfg.to_dict(),
                "name": path.stem, "note": "minimal card written for weights that came without one"}
    card.update(sha256=sha256, sha256_by=by)
    _write_card(path, card)
    return card


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
    """The shipped single-task model (``TNPSampler``'s default)."""
    return Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"


def wide_model_path() -> Path:
    """The shipped 64-input model: ``TNPSampler``'s default for spaces wider than the default model's 16 inputs."""
    return default_model_path().with_name("wide.safetensors")


def multitask_model_path() -> Path:
    """The shipped multi-task model (task slots for related studies; ``TNPSampler(related=...)``'s default)."""
    return default_model_path().with_name("multitask.safetensors")


def wide_multitask_model_path() -> Path:
    """The shipped 64-input multi-task model: ``TNPSampler(related=...)``'s default for spaces wider than the
    multi-task model's 16 inputs."""
    return default_model_path().with_name("multitask_wide.safetensors")


def shipped_model_path(n_dims: int, related: bool = False) -> Path:
    """The shipped model ``TNPSampler`` takes by default for a space of ``n_dims`` encoded dimensions: the
    default model (with related studies, the multi-task one), or its 64-input counterpart where the space is
    wider than its input."""
    narrow = multitask_model_path() if related else default_model_path()
    if n_dims <= load_cached(narrow).cfg.max_dims:
        return narrow
    return wide_multitask_model_path() if related else wide_model_path()


_CACHE: dict[str, TNPModel] = {}


def load_cached(path: str | Path | None = None) -> TNPModel:
    """Load a model once per process (keyed by resolved path), so its checks and hash run once."""
    key = str(Path(path).resolve()) if path is not None else str(default_model_path())
    if key not in _CACHE:
        model = load_model(key)
        for p in model.parameters():
            p.requires_grad_(False)
        _CACHE[key] = model
    return _CACHE[key]
