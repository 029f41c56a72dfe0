"""``audiox-studio train``: train or fine-tune a model, and ``train data build``: make the synthetic
training data (see audiox_core.train)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from audiox_core.environment import env_text

DEFAULT_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@contextmanager
def _train_progress() -> Iterator[Callable[[str, int, int, float, float], None]]:
    """One bar per stage with its loss and steps/s; where stdout is no terminal (a log file, CI), a
    plain line every 2 % of the stage instead."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not sys.stdout.isatty():
        every: dict[str, int] = {}

        def line(stage: str, step: int, total: int, loss: float, rate: float) -> None:
            if step % every.setdefault(stage, max(1, total // 50)) == 0 or step == total:
                print(f"train {stage} {step}/{total} loss {loss:.4f} {rate:.2f} steps/s", flush=True)

        yield line
        return
    columns = (TextColumn("train {task.description}"), BarColumn(), MofNCompleteColumn())
    columns += (TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.2f} steps/s"),)
    bar = Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn())
    tasks: dict[str, TaskID] = {}

    def show(stage: str, step: int, total: int, loss: float, rate: float) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total, completed=step, loss=loss, rate=rate)
        bar.update(tasks[stage], completed=step, loss=loss, rate=rate)

    with bar:
        yield show


def cmd_train(args: argparse.Namespace) -> int:
    from audiox_core.errors import InputError
    from audiox_core.train.loop import release, train
    from audiox_core.train.recipe import TrainConfig

    if not (args.config and args.data and args.out):
        raise InputError("train: --config, --data and --out are all needed (or: train data build --out DIR)")
    recipe = TrainConfig.from_file(args.config)
    if args.release:
        done = release(recipe, Path(args.data), Path(args.out), init=args.init)
        print(f"model: {done.model} (the EMA weights of the DiT checkpoint)\nmetrics: {done.metrics}")
        return 0
    with _train_progress() as show:
        result = train(
            recipe,
            Path(args.data),
            Path(args.out),
            init=args.init,
            resume=args.resume,
            device=args.device,
            progress=show,
        )
    for name, stage in result.stages.items():
        print(f"{name}: {len(stage.losses)} steps, final loss {stage.losses[-1]:.4f}, {stage.wall_s / 60:.1f} min")
    print(f"model: {result.model}\nmetrics: {result.metrics}\nloss curve: {result.loss_png}")
    return 0


def cmd_train_data(args: argparse.Namespace) -> int:
    from audiox_core.train.builder import build_dataset
    from tasks.progress import progress_bar

    with progress_bar("rendering clips") as update:
        report = build_dataset(
            Path(args.out), media=Path(args.media), clips=args.clips, heldout=args.heldout, seed=args.seed,
            seconds=args.seconds, progress=update,
        )  # fmt: skip
    print(f"{report.folder}: {report.train} training and {report.heldout} held-out clips; per class {report.per_class}")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` (and its nested ``data build``) on the main parser."""
    train = sub.add_parser("train", help="train or fine-tune a model; `train data build` makes training data")
    train.add_argument("--config", help="training recipe JSON, or a shipped recipe name (demo)")
    train.add_argument("--data", help="training data folder (manifest.json, clips, sounds, captions)")
    train.add_argument("--out", help="output folder: checkpoints, model/, metrics.json, loss.png")
    train.add_argument("--init", help="start from this model (an AudioX release folder, or demo)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument(
        "--release",
        action="store_true",
        help="write --out's model/ from its DiT checkpoint's EMA weights, without training (a run stopped early)",
    )
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.set_defaults(func=cmd_train)
    nested = train.add_subparsers(dest="train_command")
    data = nested.add_parser("data", help="training data")
    build = data.add_subparsers(dest="data_command", required=True).add_parser("build", help="render synthetic clips")
    build.add_argument("--out", required=True, help="data folder to write")
    build.add_argument("--media", default=env_text("AUDIOX_MEDIA", str(DEFAULT_MEDIA)), help="source sounds (CC0/PD)")
    build.add_argument("--clips", type=int, default=600, help="training clips")
    build.add_argument("--heldout", type=int, default=60, help="held-out evaluation clips")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--seconds", type=float, default=8.0, help="length of each clip")
    build.set_defaults(func=cmd_train_data)
