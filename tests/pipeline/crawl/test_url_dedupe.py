import itertools
import json

import pytest

from gemmaflow.pipeline.stages.url_dedupe import fetch_date, split_by_fetch


def fetch(doc_id: str, date: str) -> dict:
    return {"id": doc_id, "meta": json.dumps({"warc_date": date}), "text": "", "source": "warc"}


@pytest.mark.parametrize(("survivor", "expected"), [("earliest", "b"), ("latest", "c")])
def test_survivor_by_fetch_date_whatever_the_order(survivor, expected):
    docs = [fetch("a", "2024-03-01T00:00:00Z"), fetch("b", "2024-01-01T00:00:00Z"),
            fetch("c", "2024-06-01T00:00:00Z")]  # fmt: skip
    for order in itertools.permutations(docs):
        kept, others = split_by_fetch(order, survivor)
        assert kept["id"] == expected and len(others) == 2


def test_ties_go_to_the_smallest_id_and_missing_dates_sort_first():
    same = [fetch("z", "2024-01-01T00:00:00Z"), fetch("m", "2024-01-01T00:00:00Z")]
    assert split_by_fetch(same, "earliest")[0]["id"] == "m"
    assert split_by_fetch(same, "latest")[0]["id"] == "m"
    assert fetch_date({"meta": None}) == ""
