"""Scale-out of ``pam generate`` on Ray: one actor per worker, each holding a ``Generator``
(so diffusion weights load once per worker, not per episode), fed episode indices as they free
up. Episodes land in the same dataset folder; the writer is atomic per episode and each episode
draws from seed ``(seed, i)``, so a Ray batch writes exactly what a local one would, and it
resumes the same way.

The workers run the very pipeline ``pam generate`` runs locally (:mod:`pam_engine.pipeline`):
they are handed its ``Generator`` class, so this module does not import the pipeline (no cycle)."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from pam_engine.config import to_dict


@dataclass(frozen=True)
class RayConfig:
    """Where to run: ``workers`` 0 runs in this process; ``address`` joins a cluster ("auto" or
    ``ray://host:10001``), else a local Ray starts with ``workers`` CPUs."""

    workers: int = 0
    address: str | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # e.g. 1 when the diffusion stages run on the workers' GPUs


class _Worker:
    """A Ray actor body: builds its generator once (``generator_cls.from_config_dict``), then
    runs the episodes it is given."""

    def __init__(self, generator_cls, cfg_dict: dict, out: str):
        self.generator = generator_cls.from_config_dict(cfg_dict, out)

    def episode(self, index: int) -> dict:
        summary = self.generator.new_summary()
        self.generator.run_indices([index], summary)
        return {"written": summary.written, "grasped": summary.grasped, "failed": summary.failed,
                "attempted": summary.attempted, "stage_seconds": dict(summary.stage_seconds)}


def run_on_ray(generator, todo: list[int], summary, ray_cfg: RayConfig, progress: bool = True):
    """Run episodes ``todo`` of ``generator`` (a :class:`pam_engine.pipeline.Generator`) on Ray
    workers, counting into ``summary``, which is returned."""
    import ray
    from ray.util import ActorPool

    cfg = generator.cfg
    if not todo:
        return summary
    started_here = not ray.is_initialized()
    if started_here:
        if ray_cfg.address:
            ray.init(address=ray_cfg.address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(ray_cfg.workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(num_cpus=ray_cfg.cpus_per_worker, num_gpus=ray_cfg.gpus_per_worker)(_Worker)
        workers = [actor.remote(type(generator), to_dict(cfg), str(generator.out))
                   for _ in range(max(ray_cfg.workers, 1))]
        pool = ActorPool(workers)
        results = pool.map_unordered(lambda w, i: w.episode.remote(i), todo)
        for part in tqdm(results, total=len(todo), desc="episodes (ray)", disable=not progress):
            summary.written += part["written"]
            summary.grasped += part["grasped"]
            summary.failed += part["failed"]
            summary.attempted += part["attempted"]
            for stage, seconds in part["stage_seconds"].items():
                summary.stage_seconds[stage] += seconds
    finally:
        if started_here:
            ray.shutdown()
    return summary
