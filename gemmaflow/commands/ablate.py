"""`gemmaflow ablate`: the same small model trained on each data variant over N seeds (gemmaflow/ablate.py)."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from gemmaflow.commands.common import UserError


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    from gemmaflow.ablate import AblationInputError, load_ablation_config, markdown_table, run_ablation
    from gemmaflow.demo import bundled_config
    from gemmaflow.pipeline.run_output import OutputExistsError

    try:
        config = load_ablation_config(bundled_config(args.config))
    except ValueError as exc:  # ConfigError included
        raise UserError(f"{args.config}: {exc}") from exc
    changes = {"input": tuple(args.input)} if args.input else {}
    if args.heldout:
        changes["heldout"] = args.heldout
    config = dataclasses.replace(config, **changes)
    try:
        document = run_ablation(config, args.output, overwrite=args.overwrite)
    except (AblationInputError, OutputExistsError) as exc:
        raise UserError(str(exc)) from exc
    print(markdown_table(document))
    print(f"{len(config.variants)} variants x {len(config.seeds)} seeds, {document['budget_tokens']:,} training tokens "
          f"each, {document['wall_seconds']:.0f} s; ablation.json and per-seed results in {args.output}; "
          f"`gemmaflow report {args.output}` plots them")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ablate",
        help="data ablation: the same model trained on each data variant over several seeds, then evaluated",
        description=(
            "Curate the input with each variant's config (or take a packed shard folder), pack every variant "
            "with one tokenizer and pack config, train the same model for the same number of tokens once per "
            "seed, and evaluate each model on held-out bits per byte and the task files. Prints the mean over "
            "seeds with 95% Student-t intervals; ablation.json holds every figure."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow ablate --config ablate.yaml --output ablations/raw-vs-curated
              gemmaflow ablate --config ablate-demo.yaml --input gemmaflow/sample/raw.jsonl.gz \
                  --heldout gemmaflow/sample/tasks/heldout.jsonl --output ablations/demo

            an ablation YAML (keys: gemmaflow/ablate.py AblationConfig):
              input: [raw.jsonl]
              heldout: heldout.jsonl            # {text, domain} documents, scored as bits per byte
              tasks: [sample]                   # task files for gemmaflow eval; `sample` = the bundled tasks
              seeds: [0, 1, 2]
              train: train-tiny.yaml            # one model and token budget for every variant
              variants:
                - {name: raw, curate: curate-raw.yaml}
                - {name: curated, curate: curate.yaml}
                - {name: strict, curate: curate-web-strict.yaml}
                - {name: theirs, shards: other/shards}
            """
        ),
    )
    parser.add_argument("--config", required=True, help="ablation YAML (a path, or a bundled config name)")
    parser.add_argument("--output", required=True, help="folder for every variant's data, models and ablation.json")
    parser.add_argument("--input", action="append", help="raw documents for the curate variants (replaces `input`)")
    parser.add_argument("--heldout", help="held-out {text, domain} JSONL for bits per byte (replaces `heldout`)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier ablation's files in --output")
    parser.set_defaults(handler=run)
