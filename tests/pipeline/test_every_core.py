"""One machine, every core: the local runner gets a worker process per core unless the user chose otherwise."""

from __future__ import annotations

import pytest

from gemmaflow.pipeline.jobs.runners import PARALLEL_MIN_INPUT_BYTES, every_core, input_bytes

BIG = PARALLEL_MIN_INPUT_BYTES


def test_a_big_input_on_the_default_runner_gets_a_worker_per_core():
    assert every_core([], BIG, cores=4) == ["--direct_running_mode=multi_processing", "--direct_num_workers=4"]
    assert every_core(["--runner", "DirectRunner"], BIG, cores=2)[-1] == "--direct_num_workers=2"


@pytest.mark.parametrize("args", [
    ["--direct_num_workers", "1"],
    ["--direct_num_workers=3"],
    ["--direct-running-mode", "in_memory"],
    ["--runner", "dask"],
    ["--runner", "PortableRunner"],
])  # fmt: skip
def test_what_the_user_chose_is_left_alone(args):
    assert every_core(args, BIG, cores=8) == args


def test_small_inputs_one_core_and_inputs_too_big_for_worker_processes_stay_in_process():
    assert every_core([], BIG - 1, cores=8) == []
    assert every_core([], BIG, cores=1) == []
    memory = 64 * BIG
    assert every_core([], 8 * BIG, cores=2, memory=memory) != []
    assert every_core([], 8 * BIG + 1, cores=2, memory=memory) == []  # an eighth of memory at most


def test_input_bytes_sums_what_the_patterns_match(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"x" * 10)
    (tmp_path / "b.jsonl").write_bytes(b"x" * 5)
    assert input_bytes([str(tmp_path / "*.jsonl")]) == 15
    assert input_bytes([str(tmp_path / "none-*.jsonl")]) == 0
