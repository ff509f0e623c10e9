"""A small dict describing the machine a benchmark ran on (added to every JSON line)."""

from __future__ import annotations

import os
import platform
import sys


_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "OPENBLAS_THREAD_TIMEOUT", "XLA_FLAGS")


def _total_memory_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict:
    """Platform, CPUs, memory, Python, and the JAX backend, devices and versions."""
    import jax
    import jaxlib
    import numpy

    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cpus = os.cpu_count()
    devices = jax.devices()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "memory_bytes": _total_memory_bytes(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": numpy.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in devices],
        "jax_device_kind": devices[0].device_kind if devices else None,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        # other load on the machine (1, 5, 15 min) at the time of the call
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "thread_env": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
        # XLA compiler flags change the compiled code (e.g. the YNNPACK reduction fusions
        # on CPU, docs/projection.md "Speed on CPU"): recorded with every figure
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(machine_info(), indent=2))
