"""Command line: ``metabo demo | pretrain | finetune | nap | bench | report | info | card``.

A mistake in what the user gave (a missing or broken model file, an unknown scenario or optimiser, a value out
of range) ends the command with one line on stderr and exit status 2; ``--debug`` (or ``METABO_DEBUG=1``) shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from metabo.bench.cli import BENCH_USER_ERRORS, positive_int, register_cli
from metabo.demo import run_demo
from metabo.meta import load_corpus, yahpo
from metabo.model.io import ModelLoadError, card_path, default_model_path, load_model, read_card, stamp_card
from metabo.model.transformer import ModelConfig
from metabo.priors.gp import PriorConfig
from metabo.train.finetune import FinetuneConfig, dumps, finetune
from metabo.train.loop import DEVICES, PRECISIONS, describe_device, resolve_device
from metabo.train.nap import NAPConfig, check_run_dir, train_nap
from metabo.train.pretrain import TrainConfig, pretrain

DEBUG_ENV = "METABO_DEBUG"
# errors raised by what the user gave; anything else is a bug and keeps its traceback
USER_ERRORS = (ModelLoadError, ValueError, KeyError, OSError, ModuleNotFoundError, *BENCH_USER_ERRORS)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (subcommand parsers inherit it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _check_out(path: str) -> None:
    if Path(path).suffix != ".safetensors":
        raise ValueError(f"--out must be a .safetensors path, got {path}")


def _check_base(path: str | None) -> None:
    """Load the model to start from now, so a bad --base fails before the corpus or tasks load."""
    if path is not None:
        load_model(path)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    if args.d_model % args.heads:
        raise ValueError(f"--d-model {args.d_model} must be a multiple of --heads {args.heads}")
    _check_base(args.init)
    cfg = TrainConfig(
        steps=args.steps,
        seed=args.seed,
        threads=args.threads,
        max_minutes=args.max_minutes,
        stop_after=args.stop_after,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.checkpoint_every,
        snapshot_every=args.snapshot_every,
        model=ModelConfig(max_dims=args.max_dims, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                          d_ff=2 * args.d_model),
        prior=PriorConfig(max_dims=args.max_dims, dims_power=args.dims_power),
        related_prob=args.related_prob,
        max_related=args.max_related,
        init=args.init,
        device=args.device,
        precision=args.precision,
    )
    command = "metabo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"metabo pretrain: training on {describe_device(resolve_device(cfg.device))}")
    out = pretrain(cfg, args.out, resume=args.resume, command=command, progress=not args.no_progress)
    print(f"model written to {out} (card: {out.with_suffix('.json')})")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    sources: list = []
    if args.storage:
        sources.append((args.storage, args.study_pattern))
    sources += list(args.file or [])
    sources += [f"yahpo:{s}" for s in args.yahpo or []]
    if not sources:
        raise ValueError("give past studies with --storage URL, --file PATH or --yahpo SCENARIO")
    _check_out(args.out)
    _check_base(args.base)
    target_space = _yahpo_target_space(args.yahpo) if args.yahpo else None
    corpus = load_corpus(sources, target_space=target_space, yahpo_n_configs=args.yahpo_n_configs,
                         seed=args.seed)
    cfg = FinetuneConfig(max_minutes=args.max_minutes, max_steps=args.max_steps, seed=args.seed,
                         threads=args.threads, lr=args.lr, patience=args.patience, device=args.device)
    command = "metabo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"metabo finetune: training on {describe_device(resolve_device(cfg.device))}")
    label = ", ".join(s if isinstance(s, str) else f"{s[0]} ({s[1]})" for s in sources)
    result = finetune(corpus, args.out, base=args.base, target_space=target_space, cfg=cfg,
                      progress=not args.no_progress, command=command, corpus_label=label)
    print(dumps(result))
    print(f"model written to {result.path} (card: {result.path.with_suffix('.json')}, "
          f"validation curve: {result.path.with_suffix('.curve.png')})")
    return 0


def _yahpo_target_space(scenarios: list[str]) -> dict:
    """The search space of the one YAHPO scenario a model is fine-tuned for (its first train instance's)."""
    distinct = list(dict.fromkeys(scenarios))
    for scenario in distinct:
        yahpo.check_scenario(scenario)
    if len(distinct) > 1:
        raise ValueError(f"--yahpo takes one scenario, got {', '.join(distinct)}: scenarios have different search "
                         "spaces and a model is fine-tuned for one (fine-tune one model per scenario)")
    train = yahpo.instances(distinct[0], ("train",))
    if not train:
        raise ValueError(f"YAHPO scenario {distinct[0]!r} has no train instances in {yahpo.data_dir()}/splits.json")
    return yahpo.YahpoSurrogate(distinct[0], train[0]).search_space()


def _cmd_nap(args: argparse.Namespace) -> int:
    if args.resume and args.run_dir is None:
        raise ValueError("--resume needs the --run-dir to continue")
    cfg = NAPConfig(iterations=args.iterations, episodes=args.episodes, horizon=args.horizon,
                    pool_size=args.pool_size, lr=args.lr, aux_coef=args.aux_coef, max_minutes=args.max_minutes,
                    seed=args.seed, threads=args.threads, device=args.device)
    command = "metabo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # settings that do not fit, no GPU for --device cuda, or a run folder that cannot be continued: ValueError
    cfg.validate()
    device = resolve_device(cfg.device)
    if args.run_dir is not None:
        check_run_dir(args.run_dir, args.resume, args.yahpo, cfg)
    _check_out(args.out)
    yahpo.check_scenario(args.yahpo)
    _check_base(args.base)  # before the tasks load, which takes a while
    print(f"metabo nap: training on {describe_device(device)}")
    out = train_nap(args.yahpo, args.out, args.base, cfg, progress=not args.no_progress, command=command,
                    run_dir=args.run_dir, resume=args.resume, checkpoint_every=args.checkpoint_every)
    print(f"model written to {out} (card: {out.with_suffix('.json')})")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.model) if args.model else default_model_path()
    model = load_model(path)
    card = read_card(path)
    print(f"model: {path}")
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    print(json.dumps(card, indent=2))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    for path in args.model:
        command = "metabo card " + ("--force " if args.force else "") + shlex.quote(path)
        card = stamp_card(path, by=command, force=args.force)
        print(f"{card_path(path)}: sha256 {card['sha256']} (stamped by: {card['sha256_by']})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo(n_trials=args.trials, out_dir=Path(args.out), seed=args.seed)
    return 0


def _add_device_argument(parser: argparse.ArgumentParser, default: str, note: str = "") -> None:
    """The training commands' ``--device`` option."""
    parser.add_argument("--device", choices=DEVICES, default=default,
                        help="auto: the GPU where torch sees one, else the CPU" + note)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metabo", description="Meta-learned Bayesian optimisation.")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error instead of one line (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="tune a scikit-learn model with TNPSampler and TPE side by side")
    demo.add_argument("--trials", type=positive_int, default=40)
    demo.add_argument("--out", default="metabo_demo", help="folder for the SQLite study, table and plot")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)

    pre = sub.add_parser("pretrain", help="pretrain a model on the synthetic GP prior")
    pre.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, model.safetensors)")
    pre.add_argument("--steps", type=positive_int, default=20000)
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--threads", type=positive_int, default=1)
    pre.add_argument("--lr", type=positive_float, default=8e-4)
    pre.add_argument("--d-model", type=positive_int, default=128)
    pre.add_argument("--layers", type=positive_int, default=4)
    pre.add_argument("--heads", type=positive_int, default=4)
    pre.add_argument("--dims-power", type=float, default=1.5, help="> 1 favours tasks with fewer active dimensions")
    pre.add_argument("--max-dims", type=positive_int, default=16,
                     help="encoded input width of the model and of the prior's tasks; with --init, the starting "
                          "model is widened to it (new inputs start at zero weight)")
    pre.add_argument("--checkpoint-every", type=positive_int, default=250)
    pre.add_argument("--snapshot-every", type=int, default=2500, help="keep a model copy every N steps (0: never)")
    pre.add_argument("--max-minutes", type=positive_float, default=None,
                     help="stop (with a checkpoint) after this long")
    pre.add_argument("--stop-after", type=positive_int, default=None,
                     help="stop at this step; the learning-rate schedule still follows --steps")
    pre.add_argument("--related-prob", type=float, default=0.0,
                     help="share of batches with related studies in context (the multi-task prior); > 0 gives "
                          "the model task slots so TNPSampler(related=...) can use past studies")
    pre.add_argument("--max-related", type=int, default=128, help="related points per task, at most")
    pre.add_argument("--init", default=None,
                     help="start from this .safetensors model (its architecture and bucket borders; its input "
                          "widened to --max-dims where that is wider)")
    _add_device_argument(pre, TrainConfig.device, " (tasks are drawn on the CPU either way)")
    pre.add_argument("--precision", choices=PRECISIONS, default=TrainConfig.precision,
                     help="bf16: forward passes in bfloat16 (weights and loss in float32); faster on GPUs and on CPUs "
                          "with bfloat16 instructions")
    pre.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    pre.add_argument("--no-progress", action="store_true")
    pre.set_defaults(func=_cmd_pretrain)

    fin = sub.add_parser("finetune", help="adapt a pretrained model to your own past studies")
    fin.add_argument("--out", required=True, help="output .safetensors path (a .json card and .curve.png beside it)")
    fin.add_argument("--storage", default=None, help="Optuna storage URL holding past studies (sqlite:///past.db)")
    fin.add_argument("--study-pattern", default="*", help="glob over study names in --storage")
    fin.add_argument("--file", action="append", help="CSV/TSV/Parquet file of one past study (repeatable)")
    fin.add_argument("--yahpo", action="append", help="YAHPO scenario whose train instances form the corpus")
    fin.add_argument("--yahpo-n-configs", type=positive_int, default=100, help="random evaluations per YAHPO instance")
    fin.add_argument("--base", default=None, help="model to start from (default: the shipped multi-task model)")
    fin.add_argument("--max-minutes", type=positive_float, default=8.0)
    fin.add_argument("--max-steps", type=positive_int, default=4000)
    fin.add_argument("--lr", type=positive_float, default=1e-4)
    fin.add_argument("--patience", type=positive_int, default=8, help="evaluations without improvement before stopping")
    fin.add_argument("--seed", type=int, default=0)
    fin.add_argument("--threads", type=positive_int, default=2)
    _add_device_argument(fin, FinetuneConfig.device, " (tasks are drawn on the CPU either way)")
    fin.add_argument("--no-progress", action="store_true")
    fin.set_defaults(func=_cmd_finetune)

    nap = sub.add_parser("nap", help="train a learned acquisition function (NAP) by PPO on YAHPO train instances")
    nap.add_argument("--yahpo", required=True, help="scenario whose train instances are the training tasks")
    nap.add_argument("--base", required=True, help="model to start from (e.g. the scenario's fine-tuned model)")
    nap.add_argument("--out", required=True, help="output .safetensors path")
    nap_defaults = NAPConfig()
    nap.add_argument("--iterations", type=positive_int, default=nap_defaults.iterations, help="PPO iterations")
    nap.add_argument("--episodes", type=positive_int, default=nap_defaults.episodes, help="episodes per iteration")
    nap.add_argument("--horizon", type=positive_int, default=nap_defaults.horizon, help="steps per training episode")
    nap.add_argument("--pool-size", type=positive_int, default=nap_defaults.pool_size,
                     help="evaluated configurations an episode chooses among")
    nap.add_argument("--lr", type=positive_float, default=nap_defaults.lr)
    nap.add_argument("--aux-coef", type=float, default=nap_defaults.aux_coef,
                     help="weight of the auxiliary NLL (0: RL alone)")
    nap.add_argument("--max-minutes", type=positive_float, default=nap_defaults.max_minutes,
                     help="stop after this long (a resume starts the clock anew)")
    nap.add_argument("--seed", type=int, default=nap_defaults.seed)
    nap.add_argument("--threads", type=positive_int, default=nap_defaults.threads)
    _add_device_argument(nap, nap_defaults.device)
    nap.add_argument("--run-dir", default=None, help="folder for checkpoints and log.jsonl (needed to resume)")
    nap.add_argument("--checkpoint-every", type=positive_int, default=10,
                     help="checkpoint every N iterations (and at the end)")
    nap.add_argument("--resume", action="store_true",
                     help="continue from the run folder's checkpoint (starts afresh where there is none)")
    nap.add_argument("--no-progress", action="store_true")
    nap.set_defaults(func=_cmd_nap)

    register_cli(sub)

    info = sub.add_parser("info", help="show a model's card")
    info.add_argument("--model", default=None, help="path to a .safetensors model (default: the shipped one)")
    info.set_defaults(func=_cmd_info)

    card = sub.add_parser("card", help="check model files and record their weights' sha256 in their cards",
                          description="Check each model file (format, version, finite weights, the card's "
                                      "architecture) and record the SHA-256 of its weights in its card, with the "
                                      "command that did it (sha256_by). Weights without a card get a minimal one. "
                                      "metabo loads a model only when its card's hash matches the weights.")
    card.add_argument("model", nargs="+", help=".safetensors model file(s)")
    card.add_argument("--force", action="store_true",
                      help="replace a hash the card already records (the weights changed: only for weights you trust)")
    card.set_defaults(func=_cmd_card)
    return parser


def error_line(exc: BaseException) -> str:
    """An exception as one line (a KeyError's message without the quotes ``str`` adds)."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(str(text).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``metabo`` command line; user errors end with one line on stderr and status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"metabo {args.command}: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
