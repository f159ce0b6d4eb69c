"""Scale-out of ``pam generate`` on Ray: one actor per worker, each holding a ``Generator``
(so diffusion weights load once per worker, not per episode), fed episode indices as they free
up. Episodes land in the same dataset folder; the writer is atomic per episode and each episode
draws from seed ``(seed, i)``, so a Ray batch writes exactly what a local one would, and it
resumes the same way.

The workers run the very pipeline ``pam generate`` runs locally (:mod:`pam_engine.pipeline`):
they are handed its ``Generator`` class, so this module does not import the pipeline (no cycle)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tqdm import tqdm

from pam_engine.config import to_dict
from pam_engine.errors import ConfigError


@dataclass(frozen=True)
class RayConfig:
    """Where to run: ``workers`` 0 runs in this process; ``address`` joins a cluster ("auto" or
    ``ray://host:10001``), else a local Ray starts with ``workers`` CPUs."""

    workers: int = 0
    address: str | None = None
    cpus_per_worker: float = 1.0
    #: GPUs Ray reserves per worker; None: 1 when the diffusion stages are configured on a CUDA
    #: device ("cuda", "cuda:N", or "auto"), else 0
    gpus_per_worker: float | None = None
    connect_timeout_s: float = 10.0  # a cluster address that does not answer in this time is an error

    @property
    def enabled(self) -> bool:
        return self.workers > 0 or bool(self.address)

    def check(self) -> None:
        import math

        if self.workers < 0:
            raise ConfigError(f"config key 'ray.workers' (--workers): expected 0 (run here) or a number of Ray "
                              f"workers >= 1, got {self.workers}")
        if not (math.isfinite(self.cpus_per_worker) and self.cpus_per_worker > 0):
            raise ConfigError(f"config key 'ray.cpus_per_worker': expected > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker is not None and not (math.isfinite(self.gpus_per_worker) and self.gpus_per_worker >= 0):
            raise ConfigError(f"config key 'ray.gpus_per_worker': expected >= 0, got {self.gpus_per_worker}")
        if not (math.isfinite(self.connect_timeout_s) and self.connect_timeout_s > 0):
            raise ConfigError(f"config key 'ray.connect_timeout_s': expected > 0, got {self.connect_timeout_s}")
        if self.address is not None:
            parse_address(self.address)

    def num_gpus(self, diffusion) -> float:
        if self.gpus_per_worker is not None:
            return float(self.gpus_per_worker)
        return 1.0 if diffusion.is_configured() and diffusion.device != "cpu" else 0.0


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address ("ray://host:10001" or a GCS "host:6379"); None for "auto".
    A malformed address is a ConfigError naming it."""
    text = address.strip()
    if text == "auto":
        return None
    rest = text[len("ray://"):] if text.startswith("ray://") else text
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ConfigError(f"config key 'ray.address' (--ray-address): expected 'auto', 'ray://host:port' or "
                          f"'host:port', got {address!r}")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast and clearly when nothing listens at a cluster address (Ray itself retries for
    about 30 s, then raises a long traceback)."""
    target = parse_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: nothing answers at {target[0]}:{target[1]} "
                          f"({exc.strerror or exc}); start the cluster (`ray start --head`) or fix the address") from exc


class _Worker:
    """A Ray actor body: builds its generator once (``generator_cls.from_config_dict``), then
    runs the episodes it is given."""

    def __init__(self, generator_cls, cfg_dict: dict, out: str):
        # policy and diffusion are built here, from the config, on the worker's own devices
        self.generator = generator_cls.from_config_dict(cfg_dict, out)

    def episode(self, index: int) -> dict:
        summary = self.generator.new_summary()
        self.generator.run_indices([index], summary)
        return {"written": summary.written, "grasped": summary.grasped, "failed": summary.failed,
                "attempted": summary.attempted, "busy": summary.busy, "skipped": summary.skipped,
                "stage_seconds": dict(summary.stage_seconds)}

    def close(self) -> None:
        self.generator.close()


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
            check_reachable(ray_cfg.address, ray_cfg.connect_timeout_s)
            try:
                ray.init(address=ray_cfg.address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:  # e.g. "auto" with no cluster running
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(f"--ray-address {ray_cfg.address}: cannot join the Ray cluster ({first}); start it "
                                  "with `ray start --head` or fix the address") from None
        else:
            ray.init(num_cpus=max(ray_cfg.workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(num_cpus=ray_cfg.cpus_per_worker, num_gpus=ray_cfg.num_gpus(cfg.diffusion))(_Worker)
        workers = [actor.remote(type(generator), to_dict(cfg), str(generator.out))
                   for _ in range(max(ray_cfg.workers, 1))]
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
