"""``dfguard train``: stage 1 (binary head + supervised contrastive), then CDNet's stage 2 (cluster loss).

* Checkpoints: ``last.pt`` after every epoch (a rerun resumes from it), ``stage1_best.pt`` / ``stage2_best.pt``
  at the best validation frame AUC, and ``best.pt``, the model to evaluate and export: stage 2's best, or stage
  1's when stage 2 never reached its validation AUC (``best_stage``). Stage 2 starts from
  ``stage1_best.pt`` and sets the centres from the training set (eq. 1); within an epoch they move by eq. (4),
  after it eq. (1) sets them again for the network as it now is; batch norm keeps its running statistics in
  stage 2, so training and inference embed alike. The centres are saved with the model.
* Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (gloo on
  CPU, NCCL on GPUs), samplers split the data, and only rank 0 writes checkpoints and TensorBoard logs.
* AMP (float16 with a gradient scaler) where the device is a GPU; fixed seeds; progress bars on rank 0.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from dfguard.config import to_dict
from dfguard.inference.checkpoint import TrainedModel
from dfguard.inference.models import DeepfakeDetector, build_model
from dfguard.progress import progress_bar

from .config import ExperimentConfig
from .data import FrameDataset
from .losses import cluster_loss, supervised_contrastive_loss
from .self_blend import SelfBlendedFrames


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: device, rank and world size."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_runtime(device: str = "auto") -> Runtime:
    """Join the process group when started by ``torchrun``; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world_size > 1 else 0
    if world_size > 1 and not use_cuda:  # CPU processes share the cores instead of each taking them all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world_size))))
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return Runtime(torch.device("cuda", local), rank, world_size)
    return Runtime(torch.device("cpu"), rank, world_size)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the same seed on every rank: identical initial weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Progress:
    """What ``last.pt`` remembers besides weights: where training stands and how it went."""

    stage: int = 1
    epoch: int = 0  # epochs completed in ``stage``
    best_auc: float = -1.0
    history: list[dict] = field(default_factory=list)


def loader(dataset: FrameDataset, batch_size: int, *, shuffle: bool, runtime: Runtime, seed: int,
           workers: int) -> DataLoader:
    """A DataLoader that splits the data between ranks when distributed."""
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if runtime.distributed else None
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, generator=generator, drop_last=shuffle and len(dataset) > batch_size,
                      persistent_workers=workers > 0)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    inputs = {k: batch[k].to(device, non_blocking=True) for k in ("faces", "parts", "dct_map", "freq_vector")}
    return inputs, batch["label"].to(device)


@torch.no_grad()
def predict(model: DeepfakeDetector, data: DataLoader, device: torch.device, stage: int,
            progress: bool = False, desc: str = "validating") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores (P(fake) of the stage's classifier), labels and sample indices over a loader, in loader order."""
    model.eval()
    embeddings, logits, labels, indices = [], [], [], []
    for batch in progress_bar(data, desc=desc, leave=False, disable=not progress):
        inputs, label = _to(batch, device)
        output = model(**inputs)
        embeddings.append(output.embedding.float().cpu())
        logits.append(output.logit.float().cpu())
        labels.append(label.cpu())
        indices.append(batch["index"])
    scorer = TrainedModel(model, model.config, stage).spec().scorer()  # the served rule, not a copy of it
    scores = scorer.frame_scores(torch.cat(embeddings).numpy(), torch.cat(logits).numpy())
    return scores, torch.cat(labels).numpy(), torch.cat(indices).numpy()


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present."""
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")


def freeze_batch_norm(model: torch.nn.Module) -> None:
    """Put every batch-norm layer in eval mode (running statistics, no updates). In stage 2 the centres follow the
    training batches' embeddings (eq. 4) and decide on inference embeddings (eq. 5): with batch statistics the two
    differ, and in short runs the centres ended up nearer the other class's inference embeddings (measured)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


@torch.no_grad()
def reset_centers(model: DeepfakeDetector, data: DataLoader, device: torch.device, progress: bool) -> None:
    """Eq. (1): the centres as the class means of the training embeddings of the stage-1 model."""
    model.eval()
    embeddings, labels = [], []
    for batch in progress_bar(data, desc="centres", leave=False, disable=not progress):
        inputs, label = _to(batch, device)
        embeddings.append(model(**inputs).embedding.float())
        labels.append(label)
    model.centers.reset(torch.cat(embeddings), torch.cat(labels))


def _gather(tensor: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    if not runtime.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(runtime.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def check_replicas(model: torch.nn.Module, runtime: Runtime) -> None:
    """Raise, naming the parameters, unless every rank holds the same weights (a debugging aid under torchrun)."""
    if not runtime.distributed:
        return
    names, params = zip(*model.named_parameters(), strict=True)
    checksums = torch.stack([p.detach().double().sum() for p in params])
    low, high = checksums.clone(), checksums.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    differing = [name for name, a, b in zip(names, low, high, strict=True) if a != b]
    if differing:
        raise RuntimeError(f"ranks hold different weights in {len(differing)} parameter(s), e.g. {differing[:3]}")


def training_frames(prepared: Path, split: str, config: ExperimentConfig, flip: bool = False
                    ) -> FrameDataset | SelfBlendedFrames:
    """A split's samples as ``config.data`` says: the data set's faces, or its real faces and self-blended fakes
    of them (with its labelled fakes too for ``both``); validation's blends are the same every epoch, and only
    training crops get the upload augmentations."""
    data = config.data
    frames = FrameDataset(prepared, split, cutoff=config.model.cutoff, flip=flip, methods=data.methods,
                          augment=data.augment if split == "train" else None)
    if data.fakes == "dataset":
        return frames
    return SelfBlendedFrames(frames, keep_fakes=data.fakes == "both", fixed=split != "train", seed=config.seed,
                             settings=data.blend)


def best_stage(history: list[dict], stage_two: bool) -> str:
    """The checkpoint ``best.pt`` copies: stage 2's best, unless stage 2 ran and never reached the validation AUC
    of stage 1's best (a cluster stage that diverged or overfitted: measured on real faces with self-blends, the
    AUC fell from 0.83 to 0.71); then stage 1's, which scores by its logit."""
    if not stage_two:
        return "stage1_best.pt"
    aucs = {stage: [e["val_auc"] for e in history if e.get("stage") == stage and "val_auc" in e] for stage in (1, 2)}
    best = {stage: max((a for a in values if a == a), default=float("-inf")) for stage, values in aucs.items()}
    return "stage2_best.pt" if best[2] >= best[1] else "stage1_best.pt"


class Trainer:
    """Runs (or resumes) both stages of one experiment into ``out``."""

    def __init__(self, config: ExperimentConfig, prepared: Path, out: Path, *, device: str = "auto",
                 workers: int = 0, progress: bool = True, verify_replicas: bool = False) -> None:
        self.config, self.out = config, Path(out)
        self.runtime = init_runtime(device)
        self.progress = progress and self.runtime.is_main
        self.verify_replicas = verify_replicas
        self.train_set = training_frames(prepared, "train", config, flip=True)
        self.val_set = training_frames(prepared, "val", config)
        crop_size = self.train_set[0]["faces"].shape[-1]
        if crop_size != config.model.image_size:
            raise ValueError(f"{prepared} holds {crop_size}px face crops but the model takes "
                             f"{config.model.image_size}px: prepare with --size {config.model.image_size}")
        self.workers = workers
        seed_everything(config.seed)
        self.model = build_model(config.model).to(self.runtime.device)
        # One DDP wrapper for the whole run: a second one over the same module would keep the first one's
        # gradient hooks on the parameters.
        self.wrapped = DistributedDataParallel(self.model) if self.runtime.distributed else self.model
        self.amp = self.runtime.device.type == "cuda"
        self.writer = None
        if self.runtime.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(to_dict(config), indent=2, default=str))
            self.writer = SummaryWriter(str(self.out / "tensorboard"))

    # --- checkpoints ---------------------------------------------------------------------------------------

    def save(self, name: str, progress: Progress, optimizer: torch.optim.Optimizer | None) -> None:
        """Write a checkpoint atomically (rank 0 only)."""
        if not self.runtime.is_main:
            return
        state = {"config": to_dict(self.config), "model": self.model.state_dict(),
                 "optimizer": optimizer.state_dict() if optimizer else None, "progress": progress.__dict__}
        partial = self.out / f".{name}.tmp"
        torch.save(state, partial)
        partial.replace(self.out / name)

    def load(self, name: str) -> dict:
        return torch.load(self.out / name, map_location=self.runtime.device, weights_only=False)

    # --- training ------------------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train (resuming from ``last.pt`` when there is one) and return the path of ``best.pt``."""
        progress, optimizer_state = Progress(), None
        if (self.out / "last.pt").exists():
            state = self.load("last.pt")
            self.model.load_state_dict(state["model"])
            progress, optimizer_state = Progress(**state["progress"]), state["optimizer"]
        if progress.stage == 1:
            progress = self.stage(1, progress, optimizer_state)
            optimizer_state = None
            if self.config.stage2.epochs > 0:  # stage 2 starts from the best stage-1 model
                self.barrier()  # rank 0 has finished writing it
                self.model.load_state_dict(self.load("stage1_best.pt")["model"])
                progress = Progress(stage=2, history=progress.history)
                self.save("last.pt", progress, None)
        if progress.stage == 2 and self.config.stage2.epochs > 0:
            progress = self.stage(2, progress, optimizer_state)
        best = best_stage(progress.history, self.config.stage2.epochs > 0)
        if self.runtime.is_main:
            (self.out / "best.pt").write_bytes((self.out / best).read_bytes())
            (self.out / "history.json").write_text(json.dumps(progress.history, indent=2))
            self.writer.close()
        self.barrier()
        return self.out / "best.pt"

    def barrier(self) -> None:
        """Wait for every rank (no-op without torchrun)."""
        if self.runtime.distributed:
            dist.barrier()

    def stage(self, stage: int, progress: Progress, optimizer_state: dict | None) -> Progress:
        """Run the remaining epochs of ``stage``; returns the progress at its end."""
        settings = self.config.stage1 if stage == 1 else self.config.stage2
        batch_size = self.config.stage1.batch_size
        seed = self.config.seed + stage
        train = loader(self.train_set, batch_size, shuffle=True, runtime=self.runtime, seed=seed, workers=self.workers)
        val = loader(self.val_set, batch_size, shuffle=False, runtime=Runtime(self.runtime.device), seed=seed,
                     workers=self.workers)
        in_order = (loader(self.train_set, batch_size, shuffle=False, runtime=Runtime(self.runtime.device), seed=seed,
                           workers=self.workers) if stage == 2 else None)  # what eq. (1) averages over
        if stage == 2 and progress.epoch == 0:
            reset_centers(self.model, in_order, self.runtime.device, self.progress)
            progress.history.append({"stage": 2, "epoch": 0, "center_distance": self.center_distance()})
        model, wrapped = self.model, self.wrapped
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=self.config.stage1.weight_decay)
        if optimizer_state:
            optimizer.load_state_dict(optimizer_state)
        scaler = torch.amp.GradScaler(enabled=self.amp)
        for epoch in range(progress.epoch, settings.epochs):
            if isinstance(train.sampler, DistributedSampler):
                train.sampler.set_epoch(epoch)
            loss = self.epoch(stage, epoch, wrapped, train, optimizer, scaler)
            if stage == 2:
                # The centres of eq. (4) trail a network that moves faster than α lets them follow (in short runs
                # they ended nearer the other class, measured); eq. (1) again gives the ones this network decides by.
                reset_centers(self.model, in_order, self.runtime.device, self.progress)
            scores, labels, _ = predict(model, val, self.runtime.device, stage, self.progress)
            val_auc = auc(scores, labels)
            progress.epoch = epoch + 1
            entry = {"stage": stage, "epoch": epoch + 1, "loss": loss, "val_auc": val_auc}
            if stage == 2:
                entry["center_distance"] = self.center_distance()
            progress.history.append(entry)
            if self.writer:
                self.writer.add_scalar(f"stage{stage}/val_auc", val_auc, epoch + 1)
                print(f"stage {stage} epoch {epoch + 1}/{settings.epochs}: loss {loss:.4f}, "
                      f"validation frame AUC {val_auc:.4f}")
            if val_auc > progress.best_auc or progress.best_auc < 0:
                progress.best_auc = val_auc
                self.save(f"stage{stage}_best.pt", progress, None)
            self.save("last.pt", progress, optimizer)
        return progress

    def center_distance(self) -> float:
        """Euclidean distance between the real and fake centres."""
        return float((self.model.centers.fake - self.model.centers.real).norm())

    def epoch(self, stage: int, epoch: int, model: torch.nn.Module, data: DataLoader,
              optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> float:
        """One pass over the training data; returns the mean loss."""
        model.train()
        if stage == 2:
            freeze_batch_norm(model)
        total, steps = 0.0, 0
        bar = progress_bar(data, desc=f"stage {stage} epoch {epoch + 1}", leave=False, disable=not self.progress)
        for batch in bar:
            inputs, labels = _to(batch, self.runtime.device)
            with torch.autocast(self.runtime.device.type, dtype=torch.float16, enabled=self.amp):
                output = model(**inputs)
            embedding = output.embedding.float()
            if stage == 1:
                loss = F.binary_cross_entropy_with_logits(output.logit.float(), labels.float())
                if self.config.stage1.contrastive_weight:
                    loss = loss + self.config.stage1.contrastive_weight * supervised_contrastive_loss(
                        embedding, labels, self.config.stage1.temperature)
            else:
                loss = cluster_loss(embedding, labels, self.model.centers.real, self.model.centers.fake,
                                    self.config.stage2.beta)
                # The binary head is idle in stage 2; a zero-weighted term keeps it in the graph so DDP's gradient
                # buckets complete (without it the ranks drifted apart from the first stage-2 step, measured).
                loss = loss + 0.0 * output.logit.float().sum()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if stage == 2:
                self.model.centers.update(_gather(embedding.detach(), self.runtime), _gather(labels, self.runtime),
                                          self.config.stage2.alpha)
            if self.verify_replicas:
                check_replicas(self.model, self.runtime)
            total += loss.item()
            steps += 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
            if self.writer:
                self.writer.add_scalar(f"stage{stage}/loss", loss.item(), epoch * len(data) + steps)
        return total / max(steps, 1)
