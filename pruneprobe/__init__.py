"""pruneprobe: which tokens of a chain of thought does the model itself need?

Greedy pruning (Singh & Hakkani-Tür, arXiv 2601.03066) deletes, one at a time, the reasoning
token whose removal costs a *pruner* LM the least likelihood, and records the whole order.
The package reads as the pipeline, each stage importing only the ones before it
(docs/architecture.md): ``data`` (models, examples, datasets) → ``core`` (encoding, scoring,
greedy, results) → ``methods`` (baselines) → ``runs`` → ``analysis`` → ``distill`` → ``viz`` →
``cli``.
"""

from pruneprobe._version import __version__
from pruneprobe.core.batched import greedy_prune_many
from pruneprobe.core.greedy import greedy_prune
from pruneprobe.core.result import PruneResult
from pruneprobe.core.strategies import Exact, Multi, Shortlist
from pruneprobe.data.datasets import list_datasets, load_examples
from pruneprobe.data.examples import PROMPT_FORMATS, Example, PromptFormat
from pruneprobe.data.models import Pruner, list_models, load_pruner
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.registry import list_methods, prune_baseline
from pruneprobe.runs.config import RunConfig
from pruneprobe.runs.execute import run_pruning
from pruneprobe.runs.tables import Run, load_run

__all__ = ["Example", "PromptFormat", "PROMPT_FORMATS", "list_datasets", "load_examples", "PruneprobeError",
           "Pruner", "list_models", "load_pruner", "PruneResult", "greedy_prune", "greedy_prune_many", "Exact", "Shortlist", "Multi",
           "list_methods", "prune_baseline", "Run", "RunConfig", "load_run", "run_pruning", "__version__"]
