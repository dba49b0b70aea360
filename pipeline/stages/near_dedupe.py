"""Beam stage: near-duplicate removal with MinHash LSH, verified candidates and connected components.

    docs ─► Sign ─┬─ (node, doc) ───────────────────────────────────────────────────────┐
                  ├─ (band key, node) ─► GroupByKey ─► pairs per bucket ─► Distinct     │
                  │                                            │                         │
                  └─ (node, sketch) ─► join sketch of each end ┴─► verified edges        │
                                                                     │                   │
                       connected components (large/small-star rounds)                    │
                                                                     │                   │
                       group by cluster ─► verdict per member ─► join with docs by node ◄┘

No step holds more than one bucket, one node's neighbours or one cluster's node keys: memory per
worker follows the largest cluster, not the corpus. A document's node key starts with its survivor
rank, so the smallest node of a cluster (what connected components converge to) is its survivor.
"""

from __future__ import annotations

import itertools
import math
import time
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
from gemmaflow.pipeline.records import rejected_row
from gemmaflow.pipeline.stages.base import KEPT, REJECTED, STATS, CountingDoFn, Document, utf8_len

STAGE = "near_dedupe"
REASON = "near_duplicate"
_BANDS = "bands"
_SKETCHES = "sketches"

# (survivor rank, id, input file, position): unique per document, ordered so the survivor is smallest.
Node = tuple[float, str, str, int]
Edge = tuple[Node, Node]


def node_key(doc: Document, config: NearDedupeConfig) -> Node:
    """The document's place in the near-duplicate graph; smaller survives (rank, then id, then position)."""
    rank = 0.0
    if config.survivor == "highest_signal":
        value = doc["signals"].get(config.survivor_signal)
        rank = -value if value is not None and not math.isnan(value) else math.inf
    provenance = doc.get("provenance") or {}
    return rank, doc["id"], provenance.get("file") or "", provenance.get("position") or 0


class _SignDoFn(CountingDoFn):
    """Signature and band keys of each document; the document itself goes on, keyed by node."""

    def __init__(self, config: NearDedupeConfig, shapes: dict[int, LshShape]) -> None:
        super().__init__(STAGE)
        self.config = config
        self.shapes = shapes
        self.perms = permutations(config.num_perm, config.seed)

    def process(self, doc: Document) -> Iterator[Any]:
        node = node_key(doc, self.config)
        yield node, doc
        start = time.perf_counter()
        profile = self.config.profile(doc["domain"])
        shingles = shingle_hashes(doc["text"], profile.ngram)
        sig = signature(shingles, self.perms) if len(shingles) else None
        self.counts.seconds += time.perf_counter() - start
        if sig is None:
            self.counts.tally("no_words")  # nothing to compare: kept as it is
            return
        self.counts.tally("signed")
        # Documents shingled alike share buckets whatever their domain (a copy may be labelled
        # differently from its original); the n-gram size in the key keeps the others apart.
        keys = [profile.ngram.to_bytes(2, "big") + key for key in band_keys(sig, self.shapes[profile.ngram])]
        yield beam.pvalue.TaggedOutput(_SKETCHES, (node, Sketch.of(sig, profile.ngram, profile.threshold)))
        for key in keys:
            yield beam.pvalue.TaggedOutput(_BANDS, (key, node))


class _BucketPairsDoFn(CountingDoFn):
    """Candidate pairs of one LSH bucket: every pair, or a star around its smallest member if oversized."""

    def __init__(self, max_bucket_size: int) -> None:
        super().__init__(STAGE)
        self.max_bucket_size = max_bucket_size

    def process(self, bucket: tuple[bytes, Iterable[Node]]) -> Iterator[Edge]:
        _, nodes = bucket
        first = list(itertools.islice(nodes, self.max_bucket_size + 1))
        if len(first) <= self.max_bucket_size:
            yield from itertools.combinations(sorted(first), 2)
            return
        # Oversized (boilerplate-only pages, one template in thousands of files): n - 1 pairs, not
        # n^2 / 2, and the bucket is streamed twice instead of held.
        self.counts.tally("oversized_buckets")
        hub = min(nodes)
        yield from ((hub, node) for node in nodes if node != hub)


def _sketch_of(joined: dict[str, list[Any]]) -> Sketch | None:
    sketches = joined["sketch"]
    return sketches[0] if sketches else None


class _AttachFirstDoFn(beam.DoFn):
    """Key each candidate pair by its second node, carrying the first node's sketch."""

    def process(self, element: tuple[Node, dict[str, list[Any]]]) -> Iterator[tuple[Node, tuple[Node, Sketch]]]:
        node, joined = element
        sketch = _sketch_of(joined)
        if sketch is not None:
            for other in joined["pair"]:
                yield other, (node, sketch)


class _VerifyDoFn(CountingDoFn):
    """Keep the candidate pairs whose signatures agree enough (see minhash.verified)."""

    def __init__(self) -> None:
        super().__init__(STAGE)

    def process(self, element: tuple[Node, dict[str, list[Any]]]) -> Iterator[Edge]:
        node, joined = element
        sketch = _sketch_of(joined)
        for other, other_sketch in joined["pair"]:
            self.counts.tally("candidate_pairs")
            if sketch is not None and verified(sketch, other_sketch):
                self.counts.tally("verified_pairs")
                yield other, node


def _pairs_with_sketches(pairs: beam.PCollection, sketches: beam.PCollection) -> beam.PCollection:
    """The verified subset of `pairs`: each pair meets the sketch of one end, then of the other."""
    first = (
        {"sketch": sketches, "pair": pairs}
        | "JoinFirstSketch" >> beam.CoGroupByKey()
        | "CarryFirstSketch" >> beam.ParDo(_AttachFirstDoFn())
    )
    return (
        {"sketch": sketches, "pair": first}
        | "JoinSecondSketch" >> beam.CoGroupByKey()
        | "VerifyPairs" >> beam.ParDo(_VerifyDoFn()).with_outputs(STATS, main="edges")
    )


class _LabelDoFn(CountingDoFn):
    """After the last round: each child's label (smallest parent); several parents is unsettled."""

    def __init__(self) -> None:
        super().__init__(STAGE)

    def process(self, element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
        child, parents = element
        root, settled = label(parents)
        if not settled:
            self.counts.tally("components.unsettled")
        yield child, root


class _SettleDoFn(CountingDoFn):
    """Every node of a component with its label; a labelled node with children of its own is unsettled."""

    def __init__(self) -> None:
        super().__init__(STAGE)

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

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

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
            | "Label" >> beam.ParDo(_LabelDoFn()).with_outputs(STATS, main="labels")
        )
        children = labelled["labels"] | "ParentToChild" >> beam.KvSwap()
        settled = (
            {"label": labelled["labels"], "children": children}
            | "JoinLabelsAndChildren" >> beam.CoGroupByKey()
            | "Settle" >> beam.ParDo(_SettleDoFn()).with_outputs(STATS, main="labels")
        )
        stats = (labelled[STATS], settled[STATS]) | "GatherComponentStats" >> beam.Flatten()
        return {"labels": settled["labels"], STATS: stats}


# A node's verdict: (cluster id, survivor id, cluster size, whether this node is the survivor).
Verdict = tuple[str, str, int, bool]


class _ClusterDoFn(CountingDoFn):
    """One cluster (all nodes labelled with the same root): its id, size and every member's verdict."""

    def __init__(self) -> None:
        super().__init__(STAGE)

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
    """Join each document with its verdict, if any: survivors and unclustered documents are kept.

    Every document passes here exactly once, so this is where the stage's in/kept/dropped are counted.
    """

    def __init__(self) -> None:
        super().__init__(STAGE)

    def process(self, element: tuple[Node, dict[str, list[Any]]]) -> Iterator[Any]:
        _, joined = element
        verdicts: list[Verdict] = joined["verdict"]
        for doc in joined["doc"]:
            nbytes = utf8_len(doc["text"])
            self.counts.record_in(nbytes)
            if not verdicts:
                self.counts.record_kept(nbytes)
                yield doc
                continue
            cluster_id, survivor_id, size, is_survivor = verdicts[0]
            if is_survivor:
                doc["signals"]["near_dedupe.cluster_size"] = float(size)
                self.counts.record_kept(nbytes)
                yield doc
            else:
                self.counts.record_dropped(REASON)
                detail = f"cluster={cluster_id} survivor={survivor_id} size={size}"
                yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(doc, STAGE, REASON, detail))


class NearDedupe(beam.PTransform):
    """One survivor per cluster of near-duplicates (MinHash LSH, verified, connected components)."""

    def __init__(self, config: NearDedupeConfig) -> None:
        super().__init__()
        self.config = config
        # Bands x rows per n-gram size, derived (datasketch) when the pipeline is built, for the lowest
        # threshold using that size: a pair is then verified against the stricter of its two domains.
        profiles = (config.web, config.code, config.math)
        self.shapes = {
            ngram: lsh_shape(min(p.threshold for p in profiles if p.ngram == ngram), config.num_perm,
                             config.false_positive_weight)
            for ngram in {p.ngram for p in profiles}
        }

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        signed = docs | "Sign" >> beam.ParDo(_SignDoFn(self.config, self.shapes)).with_outputs(
            STATS, _BANDS, _SKETCHES, main="docs"
        )
        pairs = (
            signed[_BANDS]
            | "GroupBuckets" >> beam.GroupByKey()
            | "PairsPerBucket" >> beam.ParDo(_BucketPairsDoFn(self.config.max_bucket_size)).with_outputs(
                STATS, main="pairs"
            )
        )
        unique_pairs = pairs["pairs"] | "DistinctPairs" >> beam.Distinct()
        checked = _pairs_with_sketches(unique_pairs, signed[_SKETCHES])
        components = checked["edges"] | "Components" >> ConnectedComponents(self.config.components_rounds)
        verdicts = (
            components["labels"]
            | "KeyByCluster" >> beam.KvSwap()
            | "GroupClusters" >> beam.GroupByKey()
            | "Clusters" >> beam.ParDo(_ClusterDoFn()).with_outputs(STATS, main="verdicts")
        )
        routed = (
            {"doc": signed["docs"], "verdict": verdicts["verdicts"]}
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "Route" >> beam.ParDo(_RouteDoFn()).with_outputs(STATS, REJECTED, main=KEPT)
        )
        stats = (
            signed[STATS], pairs[STATS], checked[STATS], components[STATS], verdicts[STATS], routed[STATS]
        ) | "GatherStats" >> beam.Flatten()
        return {KEPT: routed[KEPT], REJECTED: routed[REJECTED], STATS: stats}
