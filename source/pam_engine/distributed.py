"""Scale-out of ``pam generate`` on Ray: one actor per worker, each holding a ``Generator``
(so diffusion weights load once per worker, not per episode), fed episode indices as they free
up. Episodes land in the same dataset folder; the writer is atomic per episode and each episode
draws from seed ``(seed, i)``, so a Ray batch writes exactly what a local one would, and it
resumes the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm import tqdm

from pam_engine.config import from_dict, to_dict


@dataclass
class RayConfig:
    """Where to run: ``workers`` 0 runs in this process; ``address`` joins a cluster ("auto" or
    ``ray://host:10001``), else a local Ray starts with ``workers`` CPUs."""

    workers: int = 0
    address: str | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # e.g. 1 when the diffusion stages run on the workers' GPUs


class _Worker:
    """A Ray actor body: builds its Generator once, then runs the episodes it is given."""

    def __init__(self, cfg_dict: dict, out: str):
        from pam_engine.generate import GenerateConfig, Generator

        self.generator = Generator(from_dict(GenerateConfig, cfg_dict), out)

    def episode(self, index: int) -> dict:
        from pam_engine.generate import GenerateSummary

        summary = GenerateSummary(diffusion_skipped=self.generator.diffusion is None)
        self.generator.run_indices([index], summary)
        return {"written": summary.written, "grasped": summary.grasped, "failed": summary.failed,
                "attempted": summary.attempted, "busy": summary.busy, "skipped": summary.skipped,
                "stage_seconds": dict(summary.stage_seconds)}

    def close(self) -> None:
        self.generator.close()


def run_on_ray(generator, ray_cfg: RayConfig, progress: bool = True):
    """Run the episodes ``generator`` has not done yet on Ray workers; returns the merged summary."""
    import ray
    from ray.util import ActorPool

    from pam_engine.generate import GenerateSummary

    cfg = generator.cfg
    generator.claims()  # sweeps what dead runs left before the list of episodes to make
    todo = [i for i in range(cfg.episodes) if i not in generator.done_indices()]
    generator.close()
    summary = GenerateSummary(diffusion_skipped=generator.diffusion is None, skipped=cfg.episodes - len(todo))
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
        workers = [actor.remote(to_dict(cfg), str(generator.out)) for _ in range(max(ray_cfg.workers, 1))]
        pool = ActorPool(workers)
        results = pool.map_unordered(lambda w, i: w.episode.remote(i), todo)
        for part in tqdm(results, total=len(todo), desc="episodes (ray)", disable=not progress):
            summary.written += part["written"]
            summary.grasped += part["grasped"]
            summary.failed += part["failed"]
            summary.attempted += part["attempted"]
            summary.busy += part["busy"]
            summary.skipped += part["skipped"]
            for stage, seconds in part["stage_seconds"].items():
                summary.stage_seconds[stage] += seconds
        ray.get([w.close.remote() for w in workers])  # release claims before the actors end
    finally:
        if started_here:
            ray.shutdown()
    return summary
