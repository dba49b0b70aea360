"""Connected components by alternating large-star and small-star rounds (Kiveris et al., 2014), no Beam here.

Each round is a function of one node and its neighbours, so a runner can apply it after grouping
edges by node: no worker ever needs the whole graph, only one node's neighbourhood. Edges are
undirected pairs of comparable nodes; a component converges to a star around its smallest node,
which is therefore the component's label (callers put the survivor rank first in the node key so
the smallest node is the survivor).

    large_star(u): every neighbour larger than u is re-linked to the smallest of u and its neighbours
    small_star(u): u and its smaller neighbours are all linked to the smallest of them

Each pair of rounds shortens the longest path in a component by a constant factor, so O(log n)
rounds suffice in practice (chains of 26, 1,000 and 10,000 nodes settle in 5, 8 and 11). A runner
unrolls a fixed number of rounds; the final labelling counts the nodes not yet in a star (several
parents, or a parent with a parent). Their labels still lie in their own component, so a caller
that removes nothing where a label is not a root removes fewer documents, never a wrong one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)
Edge = tuple[Node, Node]


def both_directions(edge: Edge) -> list[Edge]:
    """Large-star groups each node with all its neighbours: key the edge by each endpoint."""
    a, b = edge
    return [(a, b), (b, a)]


def towards_smaller(edge: Edge) -> Edge:
    """Small-star groups each node with its smaller neighbours: key the edge by its larger endpoint."""
    a, b = edge
    return (a, b) if a > b else (b, a)


def large_star(node: Node, neighbours: Iterable[Node]) -> list[Edge]:
    """Link each neighbour larger than `node` to the smallest of `node` and its neighbours."""
    distinct = set(neighbours)
    smallest = min(distinct | {node})
    return [(neighbour, smallest) for neighbour in sorted(distinct) if neighbour > node]


def small_star(node: Node, smaller_neighbours: Iterable[Node]) -> list[Edge]:
    """Link `node` and its smaller neighbours to the smallest of them (the node itself is dropped if it is)."""
    members = set(smaller_neighbours) | {node}
    smallest = min(members)
    return [(member, smallest) for member in sorted(members) if member != smallest]


def label(parents: Iterable[Node]) -> tuple[Node, bool]:
    """A node's label after the last round (its smallest parent) and whether it is settled (one parent)."""
    distinct = set(parents)
    return min(distinct), len(distinct) == 1


def run_rounds(edges: Iterable[Edge], rounds: int) -> tuple[dict[Node, Node], int]:
    """In memory, what the Beam stage does: `rounds` large-star/small-star pairs, then labels.

    Returns (label of every node that has an edge, number of unsettled nodes). A node is unsettled
    when it has several parents or its parent has a parent of its own. For tests and small graphs;
    the Beam stage applies the same round functions to grouped edges.
    """
    current = {towards_smaller(edge) for edge in edges if edge[0] != edge[1]}
    for _ in range(rounds):
        current = set(_apply(large_star, [keyed for edge in current for keyed in both_directions(edge)]))
        current = set(_apply(small_star, [towards_smaller(edge) for edge in current]))
    labels: dict[Node, Node] = {}
    unsettled = 0
    for child, parents in _grouped([towards_smaller(edge) for edge in current]).items():
        labels[child], settled = label(parents)
        unsettled += not settled
    unsettled += sum(1 for child, parent in labels.items() if parent in labels)
    roots = {parent: parent for parent in labels.values() if parent not in labels}
    return {**labels, **roots}, unsettled


def _grouped(keyed: Iterable[Edge]) -> dict[Node, list[Node]]:
    grouped: dict[Node, list[Node]] = {}
    for key, value in keyed:
        grouped.setdefault(key, []).append(value)
    return grouped


def _apply(round_fn: Callable[[Node, Iterable[Node]], list[Edge]], keyed: Iterable[Edge]) -> list[Edge]:
    return [edge for key, values in _grouped(keyed).items() for edge in round_fn(key, values)]


def size_bucket(size: int) -> str:
    """Histogram bucket of a cluster size: "2", then powers of two ("3-4", "5-8", "9-16", ...)."""
    if size <= 2:
        return str(size)
    upper = 1 << (size - 1).bit_length()
    return f"{upper // 2 + 1}-{upper}"
