"""Connected-components round functions: large-star, small-star, labelling, chains, stars, histogram buckets."""

from __future__ import annotations

import itertools
import random
import string

import pytest

from gemmaflow.pipeline.components import (
    both_directions,
    label,
    large_star,
    run_rounds,
    size_bucket,
    small_star,
    towards_smaller,
)


def test_edge_keying_for_each_round():
    assert both_directions(("b", "a")) == [("b", "a"), ("a", "b")]
    assert towards_smaller(("a", "b")) == ("b", "a")
    assert towards_smaller(("b", "a")) == ("b", "a")


def test_large_star_links_larger_neighbours_to_the_smallest_in_the_neighbourhood():
    assert large_star(5, [3, 7, 9, 7]) == [(7, 3), (9, 3)]
    assert large_star(2, [3, 7]) == [(3, 2), (7, 2)]  # the node itself is the smallest
    assert large_star(9, [3, 7]) == []  # no larger neighbour: nothing to re-link


def test_small_star_links_the_node_and_its_smaller_neighbours_to_the_smallest():
    assert small_star(9, [3, 7, 7]) == [(7, 3), (9, 3)]
    assert small_star(4, [1]) == [(4, 1)]


def test_label_is_the_smallest_parent_and_several_parents_are_unsettled():
    assert label(["c", "a", "b"]) == ("a", False)
    assert label(["a", "a"]) == ("a", True)


def test_chain_a_to_z_becomes_one_component():
    letters = list(string.ascii_uppercase)
    shuffled = letters[:]
    random.Random(0).shuffle(shuffled)  # the chain visits the letters in random order
    chain = list(itertools.pairwise(shuffled))
    labels, unsettled = run_rounds(chain, rounds=5)
    assert unsettled == 0
    assert labels == dict.fromkeys(letters, "A")


def test_too_few_rounds_are_counted_and_never_merge_components():
    shuffled = list(range(1000))
    random.Random(1).shuffle(shuffled)
    chain = [*itertools.pairwise(shuffled), (2000, 2001)]
    labels, unsettled = run_rounds(chain, rounds=2)
    assert unsettled > 0
    assert labels[2001] == 2000
    assert all(labels[n] < 1000 for n in range(1000))  # within its own component, just not settled
    labels, unsettled = run_rounds(chain, rounds=8)
    assert unsettled == 0 and {labels[n] for n in range(1000)} == {0}


@pytest.mark.parametrize("centre", [0, 49])
def test_star_settles_in_one_round_around_its_smallest_node(centre):
    star = [(centre, leaf) for leaf in range(50) if leaf != centre]
    labels, unsettled = run_rounds(star, rounds=1)
    assert unsettled == 0
    assert set(labels.values()) == {0}


def test_separate_components_keep_separate_labels_and_self_loops_are_ignored():
    edges = [(1, 2), (2, 3), (10, 11), (5, 5)]
    labels, _ = run_rounds(edges, rounds=3)
    assert labels == {1: 1, 2: 1, 3: 1, 10: 10, 11: 10}


def test_random_graph_matches_union_find():
    rng = random.Random(2)
    edges = [(rng.randrange(400), rng.randrange(400)) for _ in range(300)]
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    labels, unsettled = run_rounds(edges, rounds=8)
    assert unsettled == 0
    assert labels == {node: find(node) for a, b in edges if a != b for node in (a, b)}


@pytest.mark.parametrize(
    ("size", "bucket"), [(2, "2"), (3, "3-4"), (4, "3-4"), (5, "5-8"), (16, "9-16"), (17, "17-32")]
)
def test_cluster_size_histogram_buckets(size, bucket):
    assert size_bucket(size) == bucket
