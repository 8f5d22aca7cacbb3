"""``pruneprobe gold``: score an annotator (the rules, or an LLM) on the gold category set (docs/categories.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pruneprobe.analysis.gold import evaluate, load_gold, report_rows, split_units
from pruneprobe.analysis.llm_annotator import LLMAnnotator, hf_generator, openai_endpoint
from pruneprobe.analysis.rule_annotator import annotate_words
from pruneprobe.data.models import EMBEDDED_MODELS, load_pruner


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("gold", help="score the rule or an LLM annotator on the gold category set",
                              description="Score an annotator on the gold chains and print per-category precision, "
                              "recall, F1 and Cohen's kappa. --llm NAME: an embedded pruner (gemma3-270m, "
                              "smollm2-135m), a hub id or local directory, or with --endpoint URL a model of an "
                              "OpenAI-compatible server; without --llm: the rule annotator.")
    p.add_argument("--llm", default=None)
    p.add_argument("--endpoint", default=None, help="an OpenAI-compatible server's base URL")
    p.add_argument("--cache-dir", default=None, help="cache the LLM's replies here (resumable)")
    p.add_argument("--max-chains", type=int, default=None, help="only the first N gold chains")
    p.add_argument("--max-new-tokens", type=int, default=1200)
    p.add_argument("--out", default=None, help="append the rows to this CSV")
    return p


def run(args) -> int:
    gold = load_gold()
    if args.max_chains:
        gold = gold[gold["chain_id"].isin(list(dict.fromkeys(gold["chain_id"]))[:args.max_chains])]
    annotate, name = annotate_words, "rules"
    if args.llm:
        if args.endpoint:
            client = openai_endpoint(args.endpoint, args.llm)
        else:
            model = load_pruner(args.llm) if args.llm in EMBEDDED_MODELS else args.llm
            client = hf_generator(model, max_new_tokens=args.max_new_tokens)
        annotator = LLMAnnotator(client, model=args.llm, cache_dir=args.cache_dir, splitter=split_units)
        annotate, name = annotator.annotate, f"llm:{args.llm}"
    rows = report_rows(evaluate(gold, annotate), name, "after")
    print(rows.to_string(index=False))
    if args.out:
        rows.to_csv(args.out, mode="a", header=not Path(args.out).exists(), index=False, float_format="%.4f")
    return 0


__all__ = ["add_parser", "run"]
