"""Models and data: pruner loading and weight caching (``models``), examples and prompt formats
(``examples``), dataset loaders (``datasets``), answer checking (``answers``) and teacher sampling
(``teacher``). Imports only ``pruneprobe.errors``.

>>> from pruneprobe.data import Example
>>> Example(id="x", question="2+2?", reasoning="2+2 = 4.", answer="4").answer
'4'
"""

from pruneprobe.data.datasets import list_datasets, load_examples
from pruneprobe.data.examples import PROMPT_FORMATS, Example, PromptFormat
from pruneprobe.data.models import Pruner, list_models, load_pruner

__all__ = ["Example", "PromptFormat", "PROMPT_FORMATS", "list_datasets", "load_examples", "Pruner", "list_models",
           "load_pruner"]
