"""Beam stage: near-duplicate removal with MinHash LSH, verified candidates and connected components.

    keys ─► Sign ─┬─ (node, keys) ──────────────────────────────────────────────────────┐
                  ├─ (bucket, handle) ─► GroupByKey ─► pairs per bucket ─► Distinct     │
                  │                                            │                         │
                  └─ (handle, node+sketch) ─► join each end ───┴─► verified node pairs   │
                                                                     │                   │
                       connected components (large/small-star rounds)                    │
                                                                     │                   │
                       group by cluster ─► verdict per member ─► join with keys by node ◄┘

No step holds more than one bucket, one node's neighbours or one cluster's node keys: memory per
worker follows the largest cluster, not the corpus. A document's node key starts with its survivor
rank, so the smallest node of a cluster (what connected components converge to) is its survivor.
The signatures are computed where the text is, in the spill step (pipeline/stages/grouping.py):
this stage sees KeyedDocs, never a document's text. `PromptDedupe` is the same stage under its own
name and reason, comparing SFT examples' prompts instead (`gemmaflow sft`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from gemmaflow.pipeline.components import both_directions, label, large_star, size_bucket, small_star, towards_smaller
from gemmaflow.pipeline.config import NearDedupeConfig
from gemmaflow.pipeline.minhash import (
    LshShape,
    Sketch,
    band_keys,
    lsh_shape,
    permutations,
    shingle_hashes,
    signature,
    verified,
)
from gemmaflow.pipeline.record_text import prompt_text
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, CountingDoFn, Document
from gemmaflow.pipeline.stages.grouping import GroupingStage, KeyedDoc, Removal
from gemmaflow.pipeline.stats import StageCounts

STAGE = "near_dedupe"
REASON = "near_duplicate"
_BANDS = "bands"
_SKETCHES = "sketches"

# (survivor rank, id, input file, position): unique per document, ordered so the survivor is smallest.
Node = tuple[float, str, str, int]
Edge = tuple[Node, Node]


def survivor_rank(doc: Document, config: NearDedupeConfig) -> float:
    """The first part of a document's node key: 0 for all, or minus its survivor signal (highest survives)."""
    if config.survivor != "highest_signal":
        return 0.0
    value = doc["signals"].get(config.survivor_signal)
    return -value if value is not None and not math.isnan(value) else math.inf


def node_key(keyed: KeyedDoc, rank: float) -> Node:
    """The document's place in the near-duplicate graph; smaller survives (rank, then id, then position)."""
    return rank, keyed.id, keyed.file, keyed.position


def handle(node: Node) -> int:
    """A node's 64-bit stand-in in buckets and candidate pairs (51 bands per document make the bucket
    entries most of this stage's shuffle, so they carry 8 bytes, not the node's strings)."""
    digest = hashlib.blake2b(repr(node[1:]).encode("utf-8", errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def bucket_key(ngram: int, band: bytes) -> int:
    """A band's bucket as 64 bits: a chance collision only adds a candidate pair, which verification drops."""
    digest = hashlib.blake2b(ngram.to_bytes(2, "big") + band, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _SignDoFn(CountingDoFn):
    """Band keys of each signed document; the document's keys go on, keyed by node, for the final join."""

    def __init__(self, shapes: dict[int, LshShape], stage: str) -> None:
        super().__init__(stage)
        self.shapes = shapes

    def process(self, keyed: KeyedDoc) -> Iterator[Any]:
        rank, sketch = keyed.keys[self.stage]
        node = node_key(keyed, rank)
        yield node, dataclasses.replace(keyed, keys={})  # the signature travels once, with the sketches
        if sketch is None:
            return
        # Documents shingled alike share buckets whatever their domain (a copy may be labelled
        # differently from its original); the n-gram size in the key keeps the others apart.
        short = handle(node)
        yield beam.pvalue.TaggedOutput(_SKETCHES, (short, (node, sketch)))
        for band in band_keys(sketch.signature(), self.shapes[sketch.ngram]):
            yield beam.pvalue.TaggedOutput(_BANDS, (bucket_key(sketch.ngram, band), short))


class _BucketPairsDoFn(CountingDoFn):
    """Candidate pairs of one LSH bucket: every pair, or a star around its smallest member if oversized."""

    def __init__(self, max_bucket_size: int, stage: str) -> None:
        super().__init__(stage)
        self.max_bucket_size = max_bucket_size

    def process(self, bucket: tuple[int, Iterable[int]]) -> Iterator[tuple[int, int]]:
        _, handles = bucket
        first = list(itertools.islice(handles, self.max_bucket_size + 1))
        if len(first) <= self.max_bucket_size:
            yield from itertools.combinations(sorted(first), 2)
            return
        # Oversized (boilerplate-only pages, one template in thousands of files): n - 1 pairs, not
        # n^2 / 2, and the bucket is streamed twice instead of held.
        self.counts.tally("oversized_buckets")
        hub = min(handles)
        yield from ((hub, other) for other in handles if other != hub)


Ended = tuple[Node, Sketch]  # one end of a candidate pair: its node and sketch


def _end_of(joined: dict[str, list[Any]]) -> Ended | None:
    ends = joined["sketch"]
    return ends[0] if ends else None


class _AttachFirstDoFn(beam.DoFn):
    """Key each candidate pair by its second end, carrying the first end's node and sketch."""

    def process(self, element: tuple[int, dict[str, list[Any]]]) -> Iterator[tuple[int, Ended]]:
        _, joined = element
        first = _end_of(joined)
        if first is not None:
            for other in joined["pair"]:
                yield other, first


class _VerifyDoFn(CountingDoFn):
    """Keep the candidate pairs whose signatures agree enough (see minhash.verified), as node pairs."""

    def process(self, element: tuple[int, dict[str, list[Any]]]) -> Iterator[Edge]:
        _, joined = element
        second = _end_of(joined)
        for node, sketch in joined["pair"]:
            self.counts.tally("candidate_pairs")
            if second is not None and verified(second[1], sketch):
                self.counts.tally("verified_pairs")
                yield node, second[0]


def _pairs_with_sketches(pairs: beam.PCollection, sketches: beam.PCollection, stage: str) -> beam.PCollection:
    """The verified subset of `pairs`: each pair meets the sketch of one end, then of the other."""
    first = (
        {"sketch": sketches, "pair": pairs}
        | "JoinFirstSketch" >> beam.CoGroupByKey()
        | "CarryFirstSketch" >> beam.ParDo(_AttachFirstDoFn())
    )
    return (
        {"sketch": sketches, "pair": first}
        | "JoinSecondSketch" >> beam.CoGroupByKey()
        | "VerifyPairs" >> beam.ParDo(_VerifyDoFn(stage)).with_outputs(STATS, main="edges")
    )


class _LabelDoFn(CountingDoFn):
    """After the last round: each child's label (smallest parent); several parents is unsettled."""

    def process(self, element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
        child, parents = element
        root, settled = label(parents)
        if not settled:
            self.counts.tally("components.unsettled")
        yield child, root


class _SettleDoFn(CountingDoFn):
    """Every node of a component with its label; a labelled node with children of its own is unsettled."""

    def process(self, element: tuple[Node, dict[str, list[Node]]]) -> Iterator[tuple[Node, Node]]:
        node, joined = element
        labels, children = joined["label"], joined["children"]
        if labels:
            if children:
                self.counts.tally("components.unsettled", len(children))
            yield node, labels[0]
        elif children:
            yield node, node  # a root: smallest node of its component


class ConnectedComponents(beam.PTransform):
    """(node, label) for every node with an edge; labels converge to the component's smallest node."""

    def __init__(self, rounds: int, stage: str) -> None:
        super().__init__()
        self.rounds = rounds
        self.stage = stage

    def expand(self, edges: beam.PCollection) -> dict[str, beam.PCollection]:
        for r in range(self.rounds):
            edges = (
                edges
                | f"LargeStarKeys{r}" >> beam.FlatMap(both_directions)
                | f"LargeStarGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMapTuple(large_star)
                | f"SmallStarKeys{r}" >> beam.Map(towards_smaller)
                | f"SmallStarGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMapTuple(small_star)
            )
        labelled = (
            edges
            | "ChildToParent" >> beam.Map(towards_smaller)
            | "GroupParents" >> beam.GroupByKey()
            | "Label" >> beam.ParDo(_LabelDoFn(self.stage)).with_outputs(STATS, main="labels")
        )
        children = labelled["labels"] | "ParentToChild" >> beam.KvSwap()
        settled = (
            {"label": labelled["labels"], "children": children}
            | "JoinLabelsAndChildren" >> beam.CoGroupByKey()
            | "Settle" >> beam.ParDo(_SettleDoFn(self.stage)).with_outputs(STATS, main="labels")
        )
        stats = (labelled[STATS], settled[STATS]) | "GatherComponentStats" >> beam.Flatten()
        return {"labels": settled["labels"], STATS: stats}


# A node's verdict: (cluster id, survivor id, cluster size, whether this node is the survivor).
Verdict = tuple[str, str, int, bool]


class _ClusterDoFn(CountingDoFn):
    """One cluster (all nodes labelled with the same root): its id, size and every member's verdict."""

    def process(self, element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Verdict]]:
        root, members = element
        size, cluster_id, root_is_member = 0, None, False
        for member in members:  # first pass: count and name the cluster, holding no list
            size += 1
            cluster_id = member[1] if cluster_id is None else min(cluster_id, member[1])
            root_is_member |= member == root
        if not root_is_member:
            # Components did not settle: these nodes point at a node labelled into another
            # cluster. Their survivor is elsewhere, so none of them is removed here.
            self.counts.tally("components.unsettled_clusters_kept")
            return
        self.counts.tally("clusters")
        self.counts.tally(f"cluster_size.{size_bucket(size)}")
        for member in members:
            yield member, (str(cluster_id), root[1], size, member == root)


class _RouteDoFn(CountingDoFn):
    """Join each document's keys with its verdict, if any: survivors and unclustered documents are kept.

    Every document passes here exactly once, so this is where the stage's in/kept/dropped are counted.
    """

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(stage)
        self.reason = reason

    def process(self, element: tuple[Node, dict[str, list[Any]]]) -> Iterator[Any]:
        _, joined = element
        verdicts: list[Verdict] = joined["verdict"]
        for keyed in joined["doc"]:
            self.counts.record_in(keyed.nbytes)
            if not verdicts:
                self.counts.record_kept(keyed.nbytes)
                yield keyed
                continue
            cluster_id, survivor_id, size, is_survivor = verdicts[0]
            if is_survivor:
                self.counts.record_kept(keyed.nbytes)
                yield keyed.with_signal(f"{self.stage}.cluster_size", float(size))
            else:
                self.counts.record_dropped(self.reason)
                detail = f"cluster={cluster_id} survivor={survivor_id} size={size}"
                yield beam.pvalue.TaggedOutput(
                    REJECTED, Removal(keyed.spill_id, keyed.row, self.stage, self.reason, detail)
                )


class NearDedupe(GroupingStage):
    """One survivor per cluster of near-duplicates (MinHash LSH, verified, connected components)."""

    name = STAGE
    reason = REASON

    def __init__(self, config: NearDedupeConfig) -> None:
        super().__init__()
        self.config = config
        self.perms = permutations(config.num_perm, config.seed)
        # Bands x rows per n-gram size, derived (datasketch) when the pipeline is built, for the lowest
        # threshold using that size: a pair is then verified against the stricter of its two domains.
        profiles = (config.web, config.code, config.math)
        self.shapes = {
            ngram: lsh_shape(min(p.threshold for p in profiles if p.ngram == ngram), config.num_perm,
                             config.false_positive_weight)
            for ngram in {p.ngram for p in profiles}
        }

    def key_of(self, doc: Document, counts: StageCounts) -> tuple[float, Sketch | None]:
        """The survivor rank and the MinHash sketch (None for a text without words: kept as it is)."""
        profile = self.config.profile(doc["domain"])
        shingles = shingle_hashes(self.compared_text(doc), profile.ngram)
        if not len(shingles):
            counts.tally("no_words")
            return survivor_rank(doc, self.config), None
        counts.tally("signed")
        return survivor_rank(doc, self.config), Sketch.of(signature(shingles, self.perms), profile.ngram,
                                                          profile.threshold)

    def compared_text(self, doc: Document) -> str:
        """What is shingled: the document's text."""
        return doc["text"]

    def expand(self, keyed: beam.PCollection) -> dict[str, beam.PCollection]:
        signed = keyed | "Sign" >> beam.ParDo(_SignDoFn(self.shapes, self.name)).with_outputs(
            STATS, _BANDS, _SKETCHES, main="docs"
        )
        pairs = (
            signed[_BANDS]
            | "GroupBuckets" >> beam.GroupByKey()
            | "PairsPerBucket" >> beam.ParDo(_BucketPairsDoFn(self.config.max_bucket_size, self.name)).with_outputs(
                STATS, main="pairs"
            )
        )
        unique_pairs = pairs["pairs"] | "DistinctPairs" >> beam.Distinct()
        checked = _pairs_with_sketches(unique_pairs, signed[_SKETCHES], self.name)
        components = checked["edges"] | "Components" >> ConnectedComponents(self.config.components_rounds, self.name)
        verdicts = (
            components["labels"]
            | "KeyByCluster" >> beam.KvSwap()
            | "GroupClusters" >> beam.GroupByKey()
            | "Clusters" >> beam.ParDo(_ClusterDoFn(self.name)).with_outputs(STATS, main="verdicts")
        )
        routed = (
            {"doc": signed["docs"], "verdict": verdicts["verdicts"]}
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "Route" >> beam.ParDo(_RouteDoFn(self.name, self.reason)).with_outputs(STATS, REJECTED, main=KEPT)
        )
        stats = (
            signed[STATS], pairs[STATS], checked[STATS], components[STATS], verdicts[STATS], routed[STATS]
        ) | "GatherStats" >> beam.Flatten()
        return {KEPT: routed[KEPT], REJECTED: routed[REJECTED], STATS: stats}


class PromptDedupe(NearDedupe):
    """SFT examples whose prompts (their user turns) are near-duplicates, whatever their answers: the same
    question arriving from two sources, or twice from one, trains once. One survivor per cluster, chosen
    as near dedupe chooses (smallest id, then input file and line, unless `survivor` says otherwise)."""

    name = "prompt_dedupe"
    reason = "near_duplicate_prompt"

    def compared_text(self, doc: Document) -> str:
        return prompt_text(doc)
