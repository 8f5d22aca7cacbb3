"""pruneprobe: which tokens of a chain of thought does the model itself need?

Greedy pruning (Singh & Hakkani-Tür, arXiv 2601.03066) deletes, one at a time, the reasoning
token whose removal costs a *pruner* LM the least likelihood, and records the whole order.
"""

__version__ = "0.1.0"

from .data import PROMPT_FORMATS, Example, PromptFormat, list_datasets, load_examples  # noqa: E402
from .errors import PruneprobeError  # noqa: E402
from .models import Pruner, list_models, load_pruner  # noqa: E402
from .result import PruneResult  # noqa: E402
from .greedy import greedy_prune  # noqa: E402
from .baselines import list_methods, prune_baseline  # noqa: E402
from .runs import Run, RunConfig, load_run, run_pruning  # noqa: E402

__all__ = ["Example", "PromptFormat", "PROMPT_FORMATS", "list_datasets", "load_examples", "PruneprobeError",
           "Pruner", "list_models", "load_pruner", "PruneResult", "greedy_prune", "list_methods",
           "prune_baseline", "Run", "RunConfig", "load_run", "run_pruning", "__version__"]
