"""The peak matmul throughput of the devices a job runs on: the denominator of MFU.

MFU (model FLOPs utilisation, PaLM appendix B: Chowdhery et al., 2022) is the FLOP/s the model's
training needs at the measured speed divided by the hardware's peak. A peak written into a config
is right on one machine only, so the peak comes from the devices in use, in this order:

1. `override` (the config's `peak_tflops`): the user knows best, e.g. for a clock-limited part.
2. Accelerators JAX names by `device_kind` in `PEAK_TFLOPS`: the vendor's dense bfloat16 figure per
   device, times the devices in use.
3. CPUs: a short float32 matmul probe on the devices in use, once per process (CPUs differ too
   much for a table, and CPU training here runs in float32).
4. Anything else: no peak and no MFU. A made-up peak would give a confident, wrong MFU.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# Dense (no 2:4 structured sparsity) bfloat16 peak per device in TFLOP/s, keyed by JAX's
# `Device.device_kind`. NVIDIA's datasheets print the bfloat16 Tensor Core figure with sparsity (marked
# "*"); the dense figure is half of it. JAX shows one device per chip for every TPU listed here.
PEAK_TFLOPS: Mapping[str, float] = MappingProxyType({
    # NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 TFLOPS (SXM) and 1,513 TFLOPS (PCIe), with sparsity.
    "NVIDIA H100 80GB HBM3": 989.5,  # H100 SXM
    "NVIDIA H100 PCIe": 756.5,
    # NVIDIA H200 Tensor Core GPU datasheet: BF16 1,979 TFLOPS (SXM), with sparsity.
    "NVIDIA H200": 989.5,
    # NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 with sparsity), every variant.
    "NVIDIA A100-SXM4-40GB": 312.0,
    "NVIDIA A100-SXM4-80GB": 312.0,
    "NVIDIA A100-PCIE-40GB": 312.0,
    "NVIDIA A100 80GB PCIe": 312.0,
    # NVIDIA L4 Tensor Core GPU datasheet: BF16 242 TFLOPS, with sparsity.
    "NVIDIA L4": 121.0,
    # Google Cloud TPU documentation, "TPU v4": 275 peak bf16 TFLOPs per chip.
    "TPU v4": 275.0,
    # Google Cloud TPU documentation, "TPU v5e": 197 peak bf16 TFLOPs per chip (JAX: "TPU v5 lite").
    "TPU v5 lite": 197.0,
    # Google Cloud TPU documentation, "TPU v5p": 459 peak bf16 TFLOPs per chip (JAX: "TPU v5").
    "TPU v5": 459.0,
    "TPU v5p": 459.0,
    # Google Cloud TPU documentation, "TPU v6e" (Trillium): 918 peak bf16 TFLOPs per chip (JAX: "TPU v6 lite").
    "TPU v6 lite": 918.0,
})

# The CPU probe: float32 [n, n] @ [n, n] per device. 1024 is large enough for a CPU's matmul kernel
# to reach its plateau and small enough that a repetition takes milliseconds.
PROBE_SIZE = 1024
PROBE_REPEATS = 8
PROBE_BUDGET_S = 0.25  # stop repeating once the timed repetitions have taken this long

_probed: dict[tuple[str, int], float] = {}  # (device kind, devices) -> job TFLOP/s, per process


@dataclasses.dataclass(frozen=True)
class Peak:
    """A job's peak matmul TFLOP/s and where it came from ("config", "table: <kind>", "probe").

    `tflops` None means no trustworthy peak is known: MFU is then None, not a guess.
    """

    tflops: float | None
    source: str

    def mfu(self, model_flops_per_s: float) -> float | None:
        """The model's training FLOP/s as a fraction of the peak."""
        return None if self.tflops is None else model_flops_per_s / (self.tflops * 1e12)

    def describe(self) -> str:
        """One line for the run's log."""
        if self.tflops is None:
            return f"MFU: not reported ({self.source}); set peak_tflops to report it"
        return f"MFU against a peak of {self.tflops:.4g} TFLOP/s ({self.source})"


def job_peak(devices: Sequence[jax.Device], override_tflops: float | None = None) -> Peak:
    """The peak of `devices` working together (every device of the job, all hosts)."""
    if override_tflops:
        return Peak(override_tflops, "config")
    kinds = sorted({device.device_kind for device in devices})
    if len(kinds) != 1:
        return Peak(None, f"mixed device kinds {kinds}")
    kind = kinds[0]
    if kind in PEAK_TFLOPS:
        return Peak(PEAK_TFLOPS[kind] * len(devices), f"table: {kind}")
    if devices[0].platform == "cpu":
        return Peak(probe_tflops(devices), "probe")
    return Peak(None, f"unknown device kind {kind!r}")


def probe_tflops(devices: Sequence[jax.Device]) -> float:
    """Measured float32 matmul TFLOP/s of `devices` together; measured once per process per kind and count.

    The probe multiplies one matrix pair per device, all devices at once, so devices that share
    cores (XLA's `--xla_force_host_platform_device_count`) are not counted as if each had them all.
    Only this process's devices can run a computation on their own; the others are taken to match.
    """
    key = (devices[0].device_kind, len(devices))
    if key not in _probed:
        local = [device for device in devices if device.process_index == jax.process_index()]
        _probed[key] = _matmul_tflops(local) * len(devices) / len(local)
    return _probed[key]


def _matmul_tflops(devices: Sequence[jax.Device]) -> float:
    """The best of a few timed runs of one float32 matmul per device (the first run, compiling, not timed)."""
    sharding = NamedSharding(Mesh(np.asarray(devices), ("devices",)), PartitionSpec("devices"))
    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.standard_normal((len(devices), PROBE_SIZE, PROBE_SIZE), np.float32), sharding)
            for _ in range(2))
    matmul = jax.jit(lambda x, y: x @ y, out_shardings=sharding)
    matmul(a, b).block_until_ready()
    best, spent = float("inf"), 0.0
    for _ in range(PROBE_REPEATS):
        started = time.perf_counter()
        matmul(a, b).block_until_ready()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
        if spent > PROBE_BUDGET_S:
            break
    return 2 * PROBE_SIZE**3 * len(devices) / best / 1e12
