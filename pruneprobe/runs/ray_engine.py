"""The Ray engine: a run's examples pruned on Ray actors, on one machine or a cluster.

Canonical pattern::

    pruneprobe run --dataset gsm_symbolic --n 1000 --pruner smollm2-135m --engine ray --out runs/big
    # a cluster: `ray start --head` on one node, `ray start --address HEAD:6379` on the others, then
    pruneprobe run ... --engine ray --address HEAD:6379 --ray-gpus-per-worker 0.25

Each actor loads the pruner once and prunes the examples the driver hands it, one at a time; the
finished ``PruneResult`` travels back to the driver, which writes it atomically into the run
directory, so workers need no shared disk. An actor that dies (killed, out of memory, node lost)
is replaced and its example given to the next free actor, up to ``max_retries`` times; after that
the example is recorded in ``errors.jsonl`` like any failure. The run stays resumable: rerunning
the same command skips finished examples and refuses another configuration, as in-process.

Gotchas:
- ``ray`` is an optional extra (``pip install 'pruneprobe[ray]'``, in ``[all]``); every node needs
  pruneprobe and the pruner's weights (an embedded pruner's PyPI package, a hub id it can reach, or
  a path that exists on that node).
- The driver also loads the pruner once, for what the run records (tokenizer and weights hashes)
  and to select examples by length; the workers load it on ``RayOptions.device`` (default: cuda
  when the actor has a GPU, else cpu).
- An actor whose constructor fails (the pruner cannot be loaded there) stops the run with that
  error instead of being retried.
- ``address=None`` starts a local Ray with this machine's cores and GPUs (``workers``: one per
  GPU, else ``cpus // cpus_per_worker``); ``"auto"`` joins a running cluster.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes.

    >>> RayOptions(workers=2).cpus_per_worker
    1.0
    """

    address: str | None = None  # None: a local Ray; "auto" or "HOST:PORT": a running cluster
    workers: int | None = None  # actors; None: one per GPU (gpus_per_worker > 0) or per CPU slot
    gpus_per_worker: float = 0.0  # e.g. 0.25: four small pruners share one GPU
    cpus_per_worker: float = 1.0
    max_retries: int = 2  # times an example whose actor died is tried again
    device: str | None = None  # the workers' device; None: cuda when the actor has a GPU, else cpu

    def __post_init__(self):
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise PruneprobeError(f"ray workers must be a positive integer or None, got {self.workers!r}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise PruneprobeError("ray gpus_per_worker must be >= 0 and cpus_per_worker > 0, got "
                                  f"{self.gpus_per_worker!r} and {self.cpus_per_worker!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise PruneprobeError(f"ray max_retries must be an integer >= 0, got {self.max_retries!r}")


def _ray():
    try:
        import ray
    except ImportError:
        raise PruneprobeError("--engine ray needs the optional dependency ray: pip install 'pruneprobe[ray]'") \
            from None
    return ray


def _start(ray, options: RayOptions) -> bool:
    """Connect to (or start) Ray; True when this call started it (and so shuts it down)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise PruneprobeError(f"could not connect to Ray at {options.address or 'a new local instance'}: {exc}") \
            from None
    return True


def _n_workers(ray, options: RayOptions, n_tasks: int) -> int:
    if options.workers is not None:
        return min(options.workers, n_tasks)
    resources = ray.cluster_resources()
    if options.gpus_per_worker > 0:
        slots = int(resources.get("GPU", 0) / options.gpus_per_worker)
    else:
        slots = int(resources.get("CPU", 1) / options.cpus_per_worker)
    return max(1, min(slots, n_tasks))


def run_on_actors(tasks: Sequence[Any], worker_class: type, worker_args: tuple, call: str,
                  on_result: Callable[[Any, Any], None], options: RayOptions = RayOptions()) -> list[tuple[Any, str]]:
    """Call ``worker.<call>(task)`` for every task on Ray actors of ``worker_class(*worker_args)``.

    ``on_result(task, value)`` runs in the driver as each task finishes (in completion order). A
    task whose actor died is retried on a fresh actor up to ``options.max_retries`` times; the
    ``(task, reason)`` pairs that never finished are returned. Exceptions a task raises inside a
    live actor are not retried: they reach the driver (catch them in the worker to record them).
    """
    ray = _ray()
    started = _start(ray, options)
    remote = ray.remote(worker_class).options(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker,
                                              max_restarts=0)
    pending, attempts, failed = deque(tasks), {}, []
    actors = [remote.remote(*worker_args) for _ in range(_n_workers(ray, options, len(pending)))]
    in_flight: dict = {}

    def submit(slot: int) -> None:
        if pending:
            task = pending.popleft()
            in_flight[getattr(actors[slot], call).remote(task)] = (slot, task)

    try:
        for slot in range(len(actors)):
            submit(slot)
        while in_flight:
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            slot, task = in_flight.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the actor died: replace it, retry the task
                if "creation task" in str(exc):  # its last line is the constructor's own error
                    raise PruneprobeError(f"a Ray worker could not start: {str(exc).strip().splitlines()[-1]}") \
                        from None
                key = id(task)
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] > options.max_retries:
                    failed.append((task, f"its Ray actor died {attempts[key]} times: {type(exc).__name__}"))
                else:
                    pending.appendleft(task)
                actors[slot] = remote.remote(*worker_args)
            else:
                on_result(task, value)
            submit(slot)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
    return failed


__all__ = ["RayOptions", "run_on_actors"]
