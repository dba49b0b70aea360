import dataclasses

import jax
import pytest

from gemmaflow.model import device_peak
from gemmaflow.model.device_peak import Peak, job_peak, probe_tflops


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    """What `job_peak` reads of a `jax.Device`, for accelerators this CPU-only test machine lacks."""

    device_kind: str
    platform: str = "gpu"
    process_index: int = 0


@pytest.mark.parametrize(("kind", "per_device"), [
    ("NVIDIA H100 80GB HBM3", 989.5), ("NVIDIA H100 PCIe", 756.5), ("NVIDIA H200", 989.5),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("TPU v4", 275.0), ("TPU v5 lite", 197.0),
    ("TPU v5", 459.0), ("TPU v6 lite", 918.0),
])
def test_known_accelerators_take_the_table_figure_times_the_devices(kind, per_device):
    peak = job_peak([FakeDevice(kind)] * 8)
    assert peak == Peak(8 * per_device, f"table: {kind}")
    assert peak.mfu(per_device * 1e12) == pytest.approx(1 / 8)


def test_the_config_override_wins_and_zero_or_none_mean_automatic():
    devices = [FakeDevice("NVIDIA H100 80GB HBM3")] * 2
    assert job_peak(devices, 123.0) == Peak(123.0, "config")
    assert job_peak(devices, 0.0) == job_peak(devices, None) == Peak(2 * 989.5, "table: NVIDIA H100 80GB HBM3")


def test_an_unknown_accelerator_gets_no_peak_and_no_mfu():
    peak = job_peak([FakeDevice("NVIDIA GeForce GTX 480")])
    assert peak.tflops is None and "unknown device kind 'NVIDIA GeForce GTX 480'" in peak.source
    assert peak.mfu(1e12) is None
    assert "not reported" in peak.describe()
    assert job_peak([FakeDevice("NVIDIA H200"), FakeDevice("NVIDIA L4")]).tflops is None  # mixed: no single peak


def test_the_cpu_probe_measures_once_and_caches(monkeypatch):
    monkeypatch.setattr(device_peak, "_probed", {})
    calls = []

    def counted(devices):
        calls.append(len(devices))
        return measure(devices)

    measure = device_peak._matmul_tflops
    monkeypatch.setattr(device_peak, "_matmul_tflops", counted)
    devices = jax.devices("cpu")
    first = probe_tflops(devices)
    assert first > 0
    assert probe_tflops(devices) == first and job_peak(devices) == Peak(first, "probe")
    assert calls == [len(devices)]

