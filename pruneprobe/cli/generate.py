"""``pruneprobe generate``: a model's own chains by rejection sampling, resumable, in chunks of questions.

The output directory holds ``chains.jsonl`` (the accepted chains, in dataset order; ``pruneprobe run
--dataset jsonl --data-path DIR/chains.jsonl`` prunes them) and ``manifest.json`` (the
configuration, the questions done, accepted and failed, samples drawn, new tokens, seconds, tokens/s,
yield). Questions are sampled in chunks (``batch_size // n_samples`` questions with the shared sampler), and
both files are rewritten atomically as each question is resolved: with the shared sampler as soon as all
its samples have ended, mid-chunk (with the rounds sampler, at the end of its chunk), so a kill loses only
the questions still being sampled; rerunning the same command skips the questions done. Chunk k samples
with a seed derived from ``--seed`` and k, so a job interrupted between chunks ends as an uninterrupted
one would; a chunk interrupted mid-way samples its remaining questions afresh (same seed, fewer rows), so
their samples can differ from an uninterrupted run's (each is still a valid draw). A different
configuration is refused, naming the field;
``--n`` may change (a larger ``--n`` continues the same question order).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from pruneprobe._version import __version__
from pruneprobe.core.io import atomic_write_json, atomic_write_text
from pruneprobe.data.datasets import load_examples
from pruneprobe.data.examples import Example
from pruneprobe.data.models import load_pruner
from pruneprobe.data.teacher import SAMPLERS, generate_chains
from pruneprobe.errors import PruneprobeError

COMPARED = ("dataset", "split", "data_path", "seed", "teacher", "dtype", "n_samples", "temperature", "top_p", "top_k",
            "max_new_tokens", "min_reasoning_chars", "batch_size", "sampler")
CHAINS, MANIFEST = "chains.jsonl", "manifest.json"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("generate", help="a model's own chains by rejection sampling (resumable)",
                              description="Sample --n-samples chains per question, keep the first whose answer "
                              "math-verify accepts after at least --min-reasoning-chars of reasoning; write "
                              f"OUT/{CHAINS} and OUT/{MANIFEST} as each question is resolved. Rerun the same line to resume.")
    p.add_argument("--dataset", required=True, help="a registered dataset (see `pruneprobe datasets`)")
    p.add_argument("--n", type=int, default=None, help="questions, the first n in dataset order (default: all)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-path", default=None, help="JSONL file, directory with {split}.jsonl, or hub id")
    p.add_argument("--seed", type=int, default=0, help="data seed (gsm_symbolic) and sampling seed (default 0)")
    p.add_argument("--teacher", required=True, help="embedded name (`pruneprobe models`), local dir or hub id")
    p.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available); not compared")
    p.add_argument("--n-samples", type=int, default=10, help="samples per question (default 10)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default 1: off, as the paper)")
    p.add_argument("--top-k", type=int, default=0, help="top-k sampling (default 0: off, as the paper)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="a sample cut here is rejected (default 512)")
    p.add_argument("--min-reasoning-chars", type=int, default=100,
                   help="reject a correct sample with fewer characters of reasoning (default 100, as the paper's code)")
    p.add_argument("--batch-size", type=int, default=160,
                   help="rows decoded together; a chunk is batch-size // n-samples questions (default 160)")
    p.add_argument("--sampler", default="shared", choices=SAMPLERS,
                   help="shared (default): all samples of a question together, prompt prefilled once, finished rows "
                   "dropped; rounds: sample k of every unsolved question, then k+1 (better when most are solved)")
    p.add_argument("--out", required=True, help="output directory (created, or resumed when it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _config(args) -> dict:
    config = {name: getattr(args, name) for name in COMPARED}
    if config["data_path"] is not None:
        config["data_path"] = str(config["data_path"])
    for name in ("n_samples", "max_new_tokens", "min_reasoning_chars", "batch_size"):
        if config[name] < 1:
            raise PruneprobeError(f"--{name.replace('_', '-')} must be a positive integer, got {config[name]}")
    if not config["temperature"] > 0:
        raise PruneprobeError(f"--temperature must be > 0 for sampling, got {config['temperature']}")
    if args.n is not None and args.n < 1:
        raise PruneprobeError(f"--n must be a positive integer, got {args.n}")
    return config


def chunk_size(config: dict) -> int:
    """Questions per chunk: one batch (``batch_size`` rows; ``n_samples`` rows a question when shared).

    >>> chunk_size({"sampler": "shared", "batch_size": 160, "n_samples": 10})
    16
    """
    if config["sampler"] == "rounds":
        return config["batch_size"]
    return max(1, config["batch_size"] // config["n_samples"])


def chunk_seed(seed: int, chunk: int) -> int:
    """The sampling seed of chunk ``chunk``: fixed by the run's seed and the chunk's position alone.

    >>> chunk_seed(0, 3) == chunk_seed(0, 3) != chunk_seed(1, 2)
    True
    """
    return int.from_bytes(hashlib.sha256(f"{seed}:{chunk}".encode()).digest()[:7], "big")


@contextmanager
def _lock(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PruneprobeError(f"another pruneprobe generate is writing {out}; wait for it or stop it") from None
        yield


def _read_state(out: Path, config: dict) -> tuple[dict, list[Example]]:
    """The manifest (a fresh one when there is none) and the accepted chains of the questions it lists as done."""
    path = out / MANIFEST
    if not path.exists():
        return {"config": config, "done": [], "failed": [], "chunks": [], "teacher": {}}, []
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PruneprobeError(f"{path} is not valid JSON ({exc.msg}); move it away to start afresh") from None
    old = manifest.get("config", {})
    diffs = [f"{k}: {old.get(k)!r} there, {config[k]!r} now" for k in COMPARED if old.get(k) != config[k]]
    if diffs:
        raise PruneprobeError(f"{out} was made with another configuration ({'; '.join(diffs)}); use a new --out, "
                              "or that directory's own settings to resume it")
    done = set(manifest.get("done", []))
    chains = []
    if (out / CHAINS).exists():
        chains = [e for e in load_examples("jsonl", path=out / CHAINS) if e.id in done]  # drops a torn chunk's chains
    return manifest, chains


def _plan(problems: list[Example], config: dict, done: set[str]) -> list[tuple[int, list[Example]]]:
    """(chunk index, its questions not done yet), chunks cut by position in the dataset."""
    size = chunk_size(config)
    chunks = [(k, problems[start:start + size]) for k, start in enumerate(range(0, len(problems), size))]
    return [(k, todo) for k, batch in chunks if (todo := [p for p in batch if p.id not in done])]


def _totals(manifest: dict, order: dict[str, int]) -> dict:
    chunks = manifest["chunks"]
    keys = ("questions", "accepted", "samples", "new_tokens", "truncated", "seconds")
    totals = {key: sum(c[key] for c in chunks) for key in keys}
    seconds = totals["seconds"]
    return {"questions_planned": len(order), "questions_done": sum(i in order for i in manifest["done"]),
            "accepted": totals["accepted"],
            "yield": round(totals["accepted"] / max(totals["questions"], 1), 4), "samples_drawn": totals["samples"],
            "new_tokens": totals["new_tokens"], "truncated_samples": totals["truncated"],
            "seconds": round(seconds, 1), "tokens_per_s": round(totals["new_tokens"] / seconds, 2) if seconds else None}


def _save(out: Path, manifest: dict, chains: list[Example], order: dict[str, int]) -> dict:
    """Rewrite the chains, then the manifest (the record of what is done), each atomically."""
    chains.sort(key=lambda e: order.get(e.id, len(order)))
    atomic_write_text(out / CHAINS, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in chains))
    totals = _totals(manifest, order)
    status = "complete" if totals["questions_done"] >= len(order) else "incomplete"
    lists = {key: manifest[key] for key in ("failed", "done", "chunks")}
    rest = {k: v for k, v in manifest.items() if k not in {*lists, *totals, "status", "version", "updated"}}
    manifest = {"status": status, **totals, **rest, "version": __version__,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **lists}
    atomic_write_json(out / MANIFEST, manifest, indent=1)
    return manifest


def _check_teacher(manifest: dict, teacher) -> None:
    info = {"name": teacher.name, "source": teacher.source, "weights_hash": teacher.weights_hash,
            "dtype": str(teacher.dtype).replace("torch.", "")}
    recorded = manifest.get("teacher") or {}
    if recorded.get("weights_hash") and recorded["weights_hash"] != info["weights_hash"]:
        raise PruneprobeError(f"teacher {teacher.name!r} has other weights ({info['weights_hash'][:12]}) than the "
                              f"ones this directory was made with ({recorded['weights_hash'][:12]})")
    manifest["teacher"] = info


def run(args) -> int:
    """Generate (or resume) chunk by chunk; exit 0 when every planned question is done."""
    config, out = _config(args), Path(args.out)
    with _lock(out):
        manifest, chains = _read_state(out, config)
        manifest["n"] = args.n
        if manifest["done"]:
            print(f"resuming {out}: {len(manifest['done'])} questions done", flush=True)
        problems = load_examples(config["dataset"], n=args.n, split=config["split"], path=config["data_path"],
                                 seed=config["seed"])
        order = {p.id: i for i, p in enumerate(problems)}
        done = set(manifest["done"])
        plan = _plan(problems, config, done)
        if plan:
            teacher = load_pruner(config["teacher"], device=args.device, dtype=config["dtype"])
            _check_teacher(manifest, teacher)
            _generate(out, manifest, chains, plan, teacher, config, order, args.no_progress)
        t = manifest = _save(out, manifest, chains, order)
    print(f"{out}: {t['questions_done']}/{len(problems)} questions done, {t['accepted']} accepted "
          f"(yield {100 * t['yield']:.1f}%), {t['samples_drawn']} samples, {t['new_tokens']} new tokens "
          f"({t['tokens_per_s']} tokens/s); chains in {out / CHAINS}")
    return 0 if manifest["status"] == "complete" else 1


def _count(entry: dict, chain, samples: list, clock: list[float]) -> None:
    """Add one resolved question's samples, tokens and seconds (since the last one) to its chunk's entry."""
    now = time.perf_counter()
    entry["questions"] += 1
    entry["accepted"] += chain is not None
    entry["samples"] += len(samples)
    entry["new_tokens"] += sum(s[1] for s in samples)
    entry["truncated"] += sum(not s[2] for s in samples)
    entry["seconds"] = round(entry["seconds"] + now - clock[0], 2)
    clock[0] = now


def _generate(out, manifest, chains, plan, teacher, config, order, quiet) -> None:
    """Each chunk of the plan: sample and reject; every question is saved (chains, then manifest) as soon as it
    is resolved, so a kill loses only the questions still being sampled."""
    with tqdm(total=len(order), initial=_totals(manifest, order)["questions_done"], unit="question",
              desc=f"generate {teacher.name}", disable=quiet) as bar:
        for k, batch in plan:
            entry = {"chunk": k, "questions": 0, "accepted": 0, "samples": 0, "new_tokens": 0, "truncated": 0,
                     "seconds": 0.0}
            manifest["chunks"].append(entry)
            clock = [time.perf_counter()]

            def resolved(problem, chain, samples, entry=entry, clock=clock) -> None:
                chains.extend([chain] if chain is not None else [])
                manifest["done"] = sorted(set(manifest["done"]) | {problem.id}, key=lambda i: order.get(i, -1))
                manifest["failed"] = sorted(set(manifest["failed"]) | ({problem.id} if chain is None else set()),
                                            key=lambda i: order.get(i, -1))
                if samples is not None:  # the rounds sampler reports its counts once, below
                    _count(entry, chain, samples, clock)
                manifest.update(_save(out, manifest, chains, order))
                bar.update(1)
                bar.set_postfix(accepted=manifest["accepted"], tok_s=manifest["tokens_per_s"])

            result = generate_chains(teacher, batch, n_samples=config["n_samples"], temperature=config["temperature"],
                                     max_new_tokens=config["max_new_tokens"], seed=chunk_seed(config["seed"], k),
                                     batch_size=config["batch_size"], top_p=config["top_p"], top_k=config["top_k"],
                                     min_reasoning_chars=config["min_reasoning_chars"], sampler=config["sampler"],
                                     progress=False, on_problem=resolved)
            if config["sampler"] != "shared":
                entry.update(questions=len(batch), accepted=len(result.examples), samples=sum(result.attempts.values()),
                             new_tokens=result.new_tokens, truncated=result.truncated, seconds=round(result.seconds, 2))
                manifest.update(_save(out, manifest, chains, order))


__all__ = ["add_parser", "chunk_seed", "chunk_size", "run"]
