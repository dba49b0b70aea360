"""Beam's Dask runner with the translation gemmaflow's jobs need: every output, every sink, side inputs once.

Beam's DaskRunner (apache_beam/runners/dask, Beam 2.78) turns each primitive transform into a
dask.bag operation. Three of its translations break any job with more than one output:

- a multi-output ParDo's bag holds all its outputs, and every tagged PCollection is that whole bag:
  rejected rows, per-bundle counts and MinHash sketches reach the next step as if they were its
  input (near-dedupe's "'<' not supported between instances of 'Sketch' and 'dict'");
- only the bag of the last transform visited is computed, so every other sink (rejected/,
  dead_letter/, the counts behind stats.json) silently never runs;
- a side input is computed by a second computation started from inside the consuming task, whose
  keys differ from the main graph's, so what feeds it may run again (a file sink's writes, for its
  finalize step).

This runner keeps Beam's translation of GroupByKey and replaces the rest: a ParDo's bag holds
(tag, value) pairs and each PCollection selects its tag; side inputs are dependencies of the
consuming tasks in the same graph (computed once); every leaf is computed, in one graph; Create and
Reshuffle spread their elements over the workers' threads, and Flatten keeps the partition count of
its largest input. Only global windows are supported, which is all a batch job here uses.

A DoFn instance is unpickled and set up once per worker thread and step, as Beam's own runners
reuse instances across bundles, so models load once per worker, not once per partition; like
theirs, teardown is best effort: here it is not called.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.bag as db
from apache_beam import DoFn, ParDo, TaggedOutput
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import AppliedPTransform, Pipeline, PipelineVisitor
from apache_beam.pvalue import PCollection
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
from apache_beam.runners.dask import dask_runner as beam_dask
from apache_beam.runners.dask import overrides
from apache_beam.runners.dask import transform_evaluator as evaluator
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.core import WindowInto
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindows
from dask.delayed import Delayed
from distributed import Client, Future, LocalCluster, as_completed

from gemmaflow.pipeline.jobs.runners import DaskWorkerOptions

Tagged = tuple[str | None, Any]  # a ParDo output: its tag (None: the main output) and the value


@dataclass(frozen=True)
class _Step:
    """What a bundle task needs to run one ParDo: the pickled DoFn, its arguments and side-input views."""

    key: str  # unique per run and step: the worker-side cache of set-up DoFn instances
    label: str
    pickled_fn: bytes
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    views: tuple[tuple[Any, dict[str, Any]], ...]  # (view class, view options) per side input


_instances = threading.local()  # per worker thread: {step key: set-up DoFn}, of the latest run only


def _instance(step: _Step) -> DoFn:
    cache: dict[str, DoFn] = getattr(_instances, "cache", {})
    if step.key not in cache:
        run = step.key.split("/", 1)[0]
        cache = {key: fn for key, fn in cache.items() if key.startswith(run + "/")}  # drop earlier runs'
        fn = pickler.loads(step.pickled_fn)
        fn.setup()
        cache[step.key] = fn
        _instances.cache = cache
    return cache[step.key]


def _run_bundle(items: Iterable[Any], step: _Step, *side_values: list[Any]) -> list[Tagged]:
    """One partition through the step's DoFn as one bundle; every output keeps its tag."""
    receivers = evaluator.OneReceiver()
    side_inputs = [
        SideInputMap(view, options, [evaluator.get_windowed_value(v, GlobalWindows()) for v in values])
        for (view, options), values in zip(step.views, side_values, strict=True)
    ]
    fn = _instance(step)
    handler = _OutputHandler(window_fn=GlobalWindows(), main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)  # fmt: skip
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(step.label, state=None), side_inputs=side_inputs,
        input_args=list(step.args), input_kwargs=step.kwargs, user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam(),
    )  # fmt: skip
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(evaluator.get_windowed_value(item, GlobalWindows()))
    invoker.invoke_finish_bundle()
    return [(out.tag, out.value.value) if isinstance(out, TaggedOutput) else (None, out.value)
            for out in receivers.values]  # fmt: skip


def _select(pairs: Iterable[Tagged], tag: str | None) -> list[Any]:
    return [value for got, value in pairs if got == tag]


def _concatenated(partitions: Sequence[list[Any]]) -> list[Any]:
    return list(itertools.chain.from_iterable(partitions))


def _nothing(partition: Iterable[Any]) -> list[Any]:
    """A leaf's partition, consumed for its effects (files written); nothing is sent back to the client."""
    for _ in partition:
        pass
    return []


class _Translator(PipelineVisitor):
    """Builds one dask.bag per transform, bottom up; `leaves()` are the bags no transform consumes."""

    def __init__(self, bag_kwargs: dict[str, Any], spread_to: int) -> None:
        self.bag_kwargs = bag_kwargs
        self.spread_to = spread_to
        self.run = uuid.uuid4().hex
        self.bags: dict[AppliedPTransform, db.Bag] = {}
        self.tagged: set[AppliedPTransform] = set()  # ParDos: their bag holds (tag, value) pairs
        self.consumed: set[AppliedPTransform] = set()

    def bag_of(self, pcoll: PCollection) -> db.Bag:
        producer = pcoll.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if producer not in self.tagged:
            return bag
        tag = next(tag for tag, output in producer.outputs.items() if output is pcoll)
        return bag.map_partitions(_select, tag)

    def side_input(self, pcoll: PCollection) -> Delayed:
        """The whole PCollection as one value, a dependency of each task that reads it."""
        return dask.delayed(_concatenated)(self.bag_of(pcoll).to_delayed(optimize_graph=False))

    def visit_transform(self, applied: AppliedPTransform) -> None:
        transform = applied.transform
        inputs = [self.bag_of(pcoll) for pcoll in applied.main_inputs.values() if isinstance(pcoll, PCollection)]
        if isinstance(transform, overrides._Create):
            bag = self._create(transform.values)
        elif isinstance(transform, overrides._GroupByKeyOnly):
            bag = evaluator.GroupByKey(applied).apply(inputs[0])
        elif isinstance(transform, overrides._Flatten):
            bag = self._flatten(inputs)
        elif isinstance(transform, overrides._Reshuffle):
            bag = inputs[0].repartition(npartitions=max(self.spread_to, inputs[0].npartitions))
        elif isinstance(transform, (overrides._GroupAlsoByWindow, WindowInto)):
            self._require_global_windows(applied)
            bag = inputs[0]
        elif isinstance(transform, ParDo):
            bag = self._par_do(applied, inputs[0])
        else:
            raise NotImplementedError(f"the Dask runner cannot run {type(transform).__name__} ({applied.full_label})")
        self.bags[applied] = bag

    def _create(self, values: Sequence[Any]) -> db.Bag:
        """The values spread over the workers (one input file per element: the reads run in parallel)."""
        if self.bag_kwargs.get("npartitions"):
            return db.from_sequence(values, npartitions=self.bag_kwargs["npartitions"])
        size = self.bag_kwargs.get("partition_size") or max(1, math.ceil(len(values) / self.spread_to))
        return db.from_sequence(values, partition_size=size)

    @staticmethod
    def _flatten(inputs: list[db.Bag]) -> db.Bag:
        """One bag of all inputs, in no more partitions than the largest input: a grouping's shuffle
        grows with the square of its partitions, and the counts gather a few from every step."""
        if not inputs:
            return db.from_sequence([], npartitions=1)
        return db.concat(inputs).repartition(npartitions=max(bag.npartitions for bag in inputs))

    def _par_do(self, applied: AppliedPTransform, bag: db.Bag) -> db.Bag:
        transform = applied.transform
        args, kwargs = transform.raw_side_inputs
        step = _Step(
            key=f"{self.run}/{applied.full_label}",
            label=applied.full_label,
            pickled_fn=pickler.dumps(transform.fn),
            args=tuple(args),
            kwargs=dict(kwargs),
            views=tuple((type(si), si._view_options()) for si in applied.side_inputs),
        )
        sides = [self.side_input(si.pvalue) for si in applied.side_inputs]
        self.tagged.add(applied)
        return bag.map_partitions(_run_bundle, step, *sides)

    @staticmethod
    def _require_global_windows(applied: AppliedPTransform) -> None:
        for output in applied.outputs.values():
            if not isinstance(output.windowing.windowfn, GlobalWindows):
                raise NotImplementedError(f"the Dask runner supports global windows only ({applied.full_label})")

    def leaves(self) -> list[db.Bag]:
        return [bag.map_partitions(_nothing) for applied, bag in self.bags.items() if applied not in self.consumed]


class DaskRunResult(PipelineResult):
    """A job on the cluster; waiting for it raises the first task's error and closes what the run opened."""

    def __init__(self, client: Client, futures: Sequence[Future], cluster: LocalCluster | None) -> None:
        super().__init__(PipelineState.RUNNING)
        self.client = client
        self.futures = futures
        self.cluster = cluster

    @property
    def state(self) -> PipelineState:
        if self._state == PipelineState.RUNNING and all(future.done() for future in self.futures):
            failed = any(future.status != "finished" for future in self.futures)
            self._state = PipelineState.FAILED if failed else PipelineState.DONE
        return self._state

    def wait_until_finish(self, duration: int | None = None) -> PipelineState:
        try:
            timeout = None if duration is None else duration / 1000
            for _ in as_completed(self.futures, timeout=timeout, with_results=True):
                pass
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self.close()
        return self._state

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def cancel(self) -> PipelineState:
        self.client.cancel(self.futures)
        self.close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> Any:
        raise NotImplementedError("the Dask runner reports no Beam metrics: the counts are in stats.json")


class DaskRunner(beam_dask.DaskRunner):
    """Runs a pipeline on a dask.distributed cluster: `--dask_client_address`, else a local one of
    `--dask-workers` worker processes (default: one per CPU) that lives as long as the run."""

    def run_pipeline(self, pipeline: Pipeline, options: PipelineOptions) -> DaskRunResult:
        dask_options = options.view_as(beam_dask.DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = beam_dask.DaskOptions._extract_bag_kwargs(dask_options)
        dask_options.pop("lazy_side_inputs", None)  # side inputs are graph dependencies here
        cluster = None
        if not dask_options.get("address") and not dask_options.get("scheduler_file"):
            workers = options.view_as(DaskWorkerOptions).dask_workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=":0")  # fmt: skip
            dask_options["address"] = cluster
        client = Client(**dask_options)
        try:
            pipeline.replace_all(overrides.dask_overrides())
            spread_to = bag_kwargs.get("npartitions") or sum(client.nthreads().values()) or 1
            translator = _Translator(bag_kwargs, spread_to)
            pipeline.visit(translator)
            futures = client.compute(translator.leaves())
        except BaseException:
            client.close()
            if cluster is not None:
                cluster.close()
            raise
        return DaskRunResult(client, futures, cluster)
