"""Classify stage throughput (documents/s per core) with the shipped domain + quality models, and accuracy.

Documents come from a corpus with ground truth (`--corpus`) as the stage receives them (normalised,
domain-labelled by the rules). Measured, each as the median of --repeats runs of CPU time (process_time):
- the stage's plain function (pipeline/classify.py: preprocessing once, both models, verdicts), in
  batches of the configured size;
- the Beam stage on the in-process DirectRunner: `Create | Classify | count`, `Create | count` (the
  runner's own cost of moving documents, which every stage pays) and their difference (the stage
  net of that, Beam's per-element plumbing of the stage included; noisy, as a small difference of
  two large numbers).
Accuracy: the shipped cards' validation figures (held out by source file), then, on the domain
model's validation documents only, domain macro-F1 of the rules alone against rules + model (the
model replaces labels the rules guessed from content; extensions and record domains stand).

    python benchmarks/classifier_stage.py --corpus CORPUS                 # the whole corpus
    python benchmarks/classifier_stage.py --corpus CORPUS --limit 5000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import apache_beam as beam
from side_by_side import REPO, add_corpus_argument, zst_jsonl

sys.path.insert(0, str(REPO / "scripts"))
from train_shipped_classifiers import split_group

from gemmaflow.classifiers.card import card_path, read_card
from gemmaflow.classifiers.model import SHIPPED_FASTTEXT_MODELS, shipped_model_path
from gemmaflow.classifiers.split import is_validation
from gemmaflow.core.domains import DOMAINS
from gemmaflow.pipeline.classify import DocumentClassifiers
from gemmaflow.pipeline.config import ClassifyConfig, DomainConfig, NormaliseConfig
from gemmaflow.pipeline.domain import detect_domain
from gemmaflow.pipeline.normalise import normalise_text
from gemmaflow.pipeline.records import document_from_record
from gemmaflow.pipeline.stages.base import KEPT
from gemmaflow.pipeline.stages.classify import Classify


def load_documents(corpus: Path, limit: int | None) -> list[dict]:
    docs, domain_config, normalise_config = [], DomainConfig(), NormaliseConfig()
    for n, record in enumerate(zst_jsonl(corpus / "docs.jsonl.zst", limit)):
        doc = document_from_record(record, "dev", n, "bench")
        assert isinstance(doc, dict)
        doc["text"] = normalise_text(doc["text"], normalise_config).text
        doc["domain"], doc["domain_method"] = detect_domain(doc["text"], doc["url"], doc["source"], domain_config)
        docs.append(doc)
    return docs


def fresh(docs: list[dict]) -> list[dict]:
    return [{**doc, "scores": {}} for doc in docs]


def function_rate(config: ClassifyConfig, docs: list[dict]) -> float:
    classifiers = DocumentClassifiers(config)
    batch = config.batch_size
    work = fresh(docs)
    start = time.process_time()
    for i in range(0, len(work), batch):
        classifiers.judge_batch(work[i : i + batch], lambda key, n: None)
    return len(docs) / (time.process_time() - start)


def beam_cpu(docs: list[dict], config: ClassifyConfig | None) -> float:
    start = time.process_time()
    with beam.Pipeline() as p:
        created = p | beam.Create(fresh(docs), reshuffle=False)
        kept = (created | Classify(config))[KEPT] if config else created
        _ = kept | beam.combiners.Count.Globally()
    return time.process_time() - start


def domain_f1(pairs: list[tuple[str, str]]) -> float:
    scores = []
    for label in DOMAINS:
        tp = sum(t == label and p == label for t, p in pairs)
        fp = sum(t != label and p == label for t, p in pairs)
        fn = sum(t == label and p != label for t, p in pairs)
        scores.append(2 * tp / max(1, 2 * tp + fp + fn))
    return sum(scores) / len(scores)


def domain_accuracy(corpus: Path, docs: list[dict], config: ClassifyConfig) -> dict[str, float]:
    truth = {t["id"]: t for t in zst_jsonl(corpus / "truth.jsonl.zst")}
    card = read_card(card_path(shipped_model_path("domain")))
    valid = [d for d in docs if is_validation(split_group(truth[d["id"]]), card.split["valid_fraction"],
                                              card.split["seed"])]  # fmt: skip
    rules = [(truth[d["id"]]["domain"], d["domain"]) for d in valid]
    content = [d for d in valid if d["domain_method"] == "content"]
    only_domain = ClassifyConfig(classifiers=tuple(e for e in config.classifiers if e.name == "domain"))
    labelled = fresh(valid)
    DocumentClassifiers(only_domain).judge_batch(labelled, lambda key, n: None)
    combined = [(truth[d["id"]]["domain"], d["domain"]) for d in labelled]
    return {
        "validation_docs": len(valid),
        "content_rule_docs": len(content),
        "rules_macro_f1": round(domain_f1(rules), 4),
        "rules_plus_model_macro_f1": round(domain_f1(combined), 4),
        "rules_content_subset_f1": round(domain_f1([(truth[d["id"]]["domain"], d["domain"]) for d in content]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_argument(parser)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    config = ClassifyConfig(enabled=True)
    docs = load_documents(args.corpus, args.limit)
    print(f"{len(docs)} documents, {sum(len(d['text']) for d in docs) / 1e6:.1f} M characters")
    rates = [function_rate(config, docs) for _ in range(args.repeats)]
    with_stage, without = [], []
    for _ in range(args.repeats):
        with_stage.append(beam_cpu(docs, config))
        without.append(beam_cpu(docs, None))
    with_cpu, without_cpu = statistics.median(with_stage), statistics.median(without)
    result = {
        "documents": len(docs),
        "function_docs_per_cpu_s": round(statistics.median(rates)),
        "beam_pipeline_docs_per_cpu_s": round(len(docs) / with_cpu),
        "beam_baseline_docs_per_cpu_s": round(len(docs) / without_cpu),
        "beam_stage_net_docs_per_cpu_s": round(len(docs) / max(1e-9, with_cpu - without_cpu)),
        "cards": {
            name: {
                k: v
                for k, v in (
                    ("training_seconds", c.training_seconds),
                    ("training_cpu_seconds", c.training_cpu_seconds),
                    ("model_bytes", c.model_bytes),
                    ("macro_f1", c.metrics["macro_f1"]),
                    ("roc_auc", c.metrics.get("roc_auc")),
                    ("at_threshold", c.metrics.get("at_threshold")),
                )
            }
            for name in SHIPPED_FASTTEXT_MODELS
            for c in [read_card(card_path(shipped_model_path(name)))]
        },
        "domain_on_validation_sources": domain_accuracy(args.corpus, docs, config),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
