from gemmaflow.classifiers.split import is_validation, split_fraction


def test_split_is_deterministic_and_seeded():
    assert split_fraction("a/b.html") == split_fraction("a/b.html")
    assert split_fraction("a/b.html", "seed-1") != split_fraction("a/b.html", "seed-2")
    assert 0.0 <= split_fraction("x") < 1.0


def test_validation_share_is_close_to_the_fraction():
    keys = [f"source-{i}" for i in range(5000)]
    share = sum(is_validation(k, 0.2) for k in keys) / len(keys)
    assert 0.18 < share < 0.22


def test_split_does_not_depend_on_row_order():
    keys = [f"k{i}" for i in range(200)]
    assert [is_validation(k, 0.3) for k in keys] == [is_validation(k, 0.3) for k in reversed(keys)][::-1]
