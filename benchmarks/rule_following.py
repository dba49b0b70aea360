"""RLHF where the right answer is known: reward-model accuracy, and the rule-following share before and after
REINFORCE and DPO, with KL to the SFT policy and wall times (gemmaflow/rule_following.py).

    python benchmarks/rule_following.py [--out runs/rule-following] [--set reinforce_steps=300 ...]

Everything runs on the CPU from the data the project generates; the figures are also written to
OUT/rule_following.json, and the per-step REINFORCE and DPO curves are in OUT/<run>/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import yaml

from gemmaflow.rule_following import load_rule_config, run_rule_following


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run of this script in --out")
    parser.add_argument("--config", help="YAML RuleFollowingConfig; missing keys take the defaults")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in args.set)}
    config = load_rule_config(args.config, overrides)
    out = args.out or tempfile.mkdtemp(prefix="rule-following-")
    started = time.perf_counter()
    result = run_rule_following(out, config, stream=sys.stderr, overwrite=args.overwrite)
    wall = time.perf_counter() - started
    print(f"task: {result['task']}; {result['data']['training_questions']} training and "
          f"{result['data']['heldout_questions']} held-out questions")
    for name in ("sft", "prefs"):
        terms = result["data"][name]["accounting"]
        drops = {reason: n for stage in result["data"][name]["stages"] for reason, n in stage["dropped"].items()}
        print(f"{name} data: {terms['records_read']} read, {terms['kept']} kept, dropped {drops}, "
              f"{terms['dead_lettered']} dead-lettered")
    reward = result["reward_model"]
    print(f"reward model: held-out pairwise accuracy {reward['accuracy']:.3f} over {reward['pairs']} pairs "
          f"(validation split during training: {reward['training_eval'].get('eval_accuracy', float('nan')):.3f})")
    print("| policy | samples | rule share | KL to SFT (nats/answer) | answer tokens |")
    print("|---|---:|---:|---:|---:|")
    for name, policy in result["policies"].items():
        print(f"| {name} | {policy['samples']} | {policy['rule_share']:.3f} | {policy['kl_to_sft']:.3f} | "
              f"{policy['mean_answer_tokens']:.1f} |")
    for name, summary in result["training"].items():
        print(f"{name} training: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if k != "steps"))
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()) + f"; wall {wall:.1f}")
    print(f"figures in {out}/rule_following.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
