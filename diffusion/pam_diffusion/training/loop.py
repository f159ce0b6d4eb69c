"""The training loop both stages share: accelerate, optimiser and schedule, checkpoints, exact resume,
TensorBoard, tqdm and the wall-clock stop.

A stage is a ``Task`` (``appearance.AppearanceTask``, ``motion.MotionTask``): it owns the models and
computes one micro-batch's loss from the step's generators. Every random draw of a step comes from
generators seeded by (seed, step, micro-step, rank), and the data position is a function of the step,
so a run resumed from a checkpoint (trainable weights, optimiser, scheduler, step) continues exactly
as the uninterrupted run.

A checkpoint folder ``checkpoint-<step>`` holds the stage's weights in PAM's layout (what ``pam
generate`` and PAM's code load) plus ``state/`` (trainable tensors and trainer state) for resuming.
It is written under a temporary name and renamed when complete."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .config import TrainerConfig, TrainingConfigError

STATE_DIR = "state"
TRAINABLE_FILE = "trainable.safetensors"
TRAINER_FILE = "trainer.pt"
#: Step key of the fixed evaluation batch (never a training step).
FIXED_STEP = 2**31 - 1


class Task(Protocol):
    def trainable_module(self) -> torch.nn.Module: ...
    def trainable_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]: ...
    def loss(self, positions: list[int], step: int, micro: int, rank: int, generator: torch.Generator,
             drops: bool = True) -> torch.Tensor: ...
    def save_weights(self, folder: Path) -> None: ...
    def validate(self, step: int, folder: Path, writer) -> None: ...
    def enable_gradient_checkpointing(self) -> None: ...
    def clip_groups(self) -> list[list[torch.nn.Parameter]]: ...


@dataclass
class TrainResult:
    """What a run did. ``losses[i]`` is the mean loss of optimiser step ``i + 1`` (all runs of the
    same output folder together); ``fixed_loss_*``: loss on a fixed batch (fixed noise, timestep and
    no drops) before the first step and after the last."""

    output_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    stopped: str = "max_steps"
    checkpoint: Path | None = None
    fixed_loss_start: float = float("nan")
    fixed_loss_end: float = float("nan")
    resumed_from: int = 0
    seconds: float = 0.0
    #: The task (models, data) as it stands after the run, for inspection.
    task: object = None


def resolve_mixed_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() else "no"


def make_optimizer(cfg: TrainerConfig, params):
    t = cfg.train
    kwargs = dict(lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2), weight_decay=t.adam_weight_decay,
                  eps=t.adam_epsilon)
    if t.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise TrainingConfigError(
                "train.optimizer: 'adamw8bit' needs bitsandbytes, which is not importable here; "
                "pip install bitsandbytes (CUDA) or use 'adamw'") from None
        return bnb.optim.AdamW8bit(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


def check_optimizer_available(cfg: TrainerConfig) -> None:
    """Fail on an unusable optimiser setting before models are built."""
    if cfg.train.optimizer == "adamw8bit":
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise TrainingConfigError(
                "train.optimizer: 'adamw8bit' needs bitsandbytes, which is not installed; "
                "pip install bitsandbytes (CUDA) or use 'adamw'")


def make_scheduler(cfg: TrainerConfig, optimizer):
    from diffusers.optimization import get_scheduler

    t = cfg.train
    return get_scheduler(t.lr_scheduler, optimizer=optimizer, num_warmup_steps=t.lr_warmup_steps,
                         num_training_steps=t.max_steps)


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    found = []
    if output_dir.is_dir():
        for p in output_dir.glob("checkpoint-*"):
            try:
                step = int(p.name.split("-", 1)[1])
            except ValueError:
                continue
            if (p / STATE_DIR / TRAINER_FILE).is_file():
                found.append((step, p))
    return sorted(found)


def run(cfg: TrainerConfig, task_factory, stop_after: int | None = None) -> TrainResult:
    """Train ``task_factory(cfg, accelerator)``'s task to ``cfg.train.max_steps`` optimiser steps (or
    ``stop_after`` steps this call, or the wall-clock limit), checkpointing as configured."""
    from accelerate import Accelerator
    from safetensors.torch import load_file

    t = cfg.train
    out = Path(t.output_dir)
    check_optimizer_available(cfg)
    existing = checkpoints(out)
    if existing and t.resume == "never":
        raise TrainingConfigError(
            f"train.output_dir {str(out)!r} already holds {existing[-1][1].name}; train.resume is 'never' "
            "(use another output_dir or resume: auto)")

    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(t.mixed_precision),
                              gradient_accumulation_steps=t.gradient_accumulation_steps)
    task = task_factory(cfg, accelerator)
    if t.gradient_checkpointing:
        task.enable_gradient_checkpointing()
    named = task.trainable_named_parameters()
    params = [p for _, p in named]
    optimizer = make_optimizer(cfg, params)
    scheduler = make_scheduler(cfg, optimizer)
    module = task.trainable_module()
    prepared, optimizer = accelerator.prepare(module, optimizer)
    task.set_prepared(prepared)

    t_start = time.monotonic()
    state = {"step": 0, "losses": [], "fixed_loss_start": float("nan")}
    resumed_from = 0
    if existing:
        step, folder = existing[-1]
        tensors = load_file(str(folder / STATE_DIR / TRAINABLE_FILE))
        names = {n for n, _ in named}
        if set(tensors) != names:
            raise TrainingConfigError(
                f"{folder}: its trainable tensors do not match this model "
                f"(missing {sorted(names - set(tensors))[:3]}, unexpected {sorted(set(tensors) - names)[:3]})")
        with torch.no_grad():
            for n, p in named:
                p.copy_(tensors[n].to(p.device, p.dtype))
        saved = torch.load(folder / STATE_DIR / TRAINER_FILE, map_location="cpu", weights_only=True)
        if saved.get("stage") != cfg.stage:
            raise TrainingConfigError(f"{folder} is a {saved.get('stage')!r} checkpoint, not {cfg.stage!r}")
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        state = {"step": int(saved["step"]), "losses": list(saved["losses"]),
                 "fixed_loss_start": float(saved["fixed_loss_start"])}
        resumed_from = state["step"]

    writer = None
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(out / "logs"))
        except ImportError:  # tensorboard not installed: logging to stdout/tqdm only
            writer = None

    world, rank = accelerator.num_processes, accelerator.process_index
    per_step = t.batch_size * t.gradient_accumulation_steps * world
    if math.isnan(state["fixed_loss_start"]):
        state["fixed_loss_start"] = fixed_loss(task, accelerator)

    from tqdm.auto import tqdm

    bar = tqdm(total=t.max_steps, initial=state["step"], desc=f"train-{cfg.stage}",
               disable=not (t.progress and accelerator.is_local_main_process))
    stopped, last_saved = "max_steps", None
    done_this_call = 0
    prepared.train()
    while state["step"] < t.max_steps:
        step = state["step"]
        total = torch.zeros((), device=accelerator.device)
        for micro in range(t.gradient_accumulation_steps):
            base = step * per_step + (micro * world + rank) * t.batch_size
            positions = list(range(base, base + t.batch_size))
            gen = torch.Generator(device=accelerator.device).manual_seed(_seed(t.seed, step, micro, rank))
            with accelerator.accumulate(prepared):
                with accelerator.autocast():
                    loss = task.loss(positions, step, micro, rank, gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm > 0:
                    for group in task.clip_groups():  # PAM clips each of its two ControlNets on its own
                        accelerator.clip_grad_norm_(group, t.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += loss.detach().float() / t.gradient_accumulation_steps
        scheduler.step()
        mean_loss = float(accelerator.gather(total[None]).mean())
        state["losses"].append(mean_loss)
        state["step"] = step = step + 1
        done_this_call += 1
        bar.update(1)
        bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if writer is not None and step % t.log_every == 0:
            writer.add_scalar("train/loss", mean_loss, step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
        if t.validate_every and step % t.validate_every == 0 and accelerator.is_main_process:
            prepared.eval()
            task.validate(step, out / "validation", writer)
            prepared.train()
        over_time = t.max_wall_s and time.monotonic() - t_start >= t.max_wall_s
        interrupted = stop_after is not None and done_this_call >= stop_after
        if over_time:
            stopped = "wall_clock"
        elif interrupted:
            stopped = "stop_after"
        if step % t.checkpoint_every == 0 or step == t.max_steps or over_time or interrupted:
            if step == t.max_steps:
                state["fixed_loss_end"] = fixed_loss(task, accelerator)
            last_saved = save_checkpoint(cfg, task, accelerator, optimizer, scheduler, state)
        if over_time or interrupted:
            break
    bar.close()
    if writer is not None:
        writer.close()
    if last_saved is None and existing:
        last_saved = existing[-1][1]
    end = state.get("fixed_loss_end")
    if end is None:
        end = fixed_loss(task, accelerator)
    accelerator.wait_for_everyone()
    return TrainResult(output_dir=out, steps=state["step"], losses=list(state["losses"]), stopped=stopped,
                       checkpoint=last_saved, fixed_loss_start=state["fixed_loss_start"], fixed_loss_end=float(end),
                       resumed_from=resumed_from, seconds=time.monotonic() - t_start, task=task)


def fixed_loss(task, accelerator) -> float:
    """Loss of the first training sample at a fixed noise draw and timestep, nothing dropped."""
    gen = torch.Generator(device=accelerator.device).manual_seed(1234)
    with torch.no_grad(), accelerator.autocast():
        return float(task.loss([0], FIXED_STEP, 0, 0, gen, drops=False))


def _seed(seed: int, step: int, micro: int, rank: int) -> int:
    from .data import stable_seed

    return stable_seed("step", seed, step, micro, rank)


def save_checkpoint(cfg: TrainerConfig, task, accelerator, optimizer, scheduler, state) -> Path:
    """Write ``checkpoint-<step>`` atomically (temporary folder, then rename) and prune old ones."""
    from safetensors.torch import save_file

    out = Path(cfg.train.output_dir)
    final = out / f"checkpoint-{state['step']:06d}"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp = out / f".tmp-{final.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        (tmp / STATE_DIR).mkdir(parents=True)
        task.save_weights(tmp)
        tensors = {n: p.detach().float().cpu().contiguous() for n, p in task.trainable_named_parameters()}
        save_file(tensors, str(tmp / STATE_DIR / TRAINABLE_FILE))
        torch.save({"stage": cfg.stage, "step": state["step"], "losses": state["losses"],
                    "fixed_loss_start": state["fixed_loss_start"], "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state()},
                   tmp / STATE_DIR / TRAINER_FILE)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for _, old in checkpoints(out)[:-cfg.train.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
