"""The Ray cluster a run's workers live on: joined at an address or started on this machine.

Everything a user can get wrong about it is one ValueError line, raised before any run directory
exists: Ray not installed, an address where nothing answers (checked with a plain TCP connect
first: Ray itself retries for a minute), a Ray or Python version that is not the cluster's (Ray's
own check at connection), a cluster with no node that could hold one worker.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ..run.run_config import ExecutorSection


def ray_module() -> Any:
    """Ray, imported only here and only for a Ray run."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray: Ray is not installed here (pip install 'ponder[ray]')") from None
    return ray


def connect(executor: ExecutorSection) -> None:
    """Join the cluster at `executor.address`, or start a local one (which stops when this
    process disconnects). One ValueError line for what a user can fix."""
    ray = ray_module()
    address = executor.address if executor.address not in (None, "local") else "local"
    host_port = address.removeprefix("ray://")
    if address not in ("local", "auto"):
        host, port = host_port.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise ValueError(f"--ray {address}: no Ray cluster answers there ({e.strerror or e})") from None
    try:
        try:
            ray.init(address=address, include_dashboard=False if address == "local" else None, log_to_driver=True)
        except BaseException:
            ray.shutdown()  # whatever a failed connection set up
            raise
    except RuntimeError as e:
        text = str(e)
        if text.startswith("Version mismatch"):
            versions = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith(("Ray:", "Python:"))]
            there, here = versions[:2], versions[2:4]
            raise ValueError(f"--ray {address}: the cluster runs Ray {there[0]} on Python {there[1]}, this machine "
                             f"Ray {here[0]} on Python {here[1]}: install the cluster's versions here") from None
        raise ValueError(f"--ray {address}: {text.strip().splitlines()[0]}") from None
    except ConnectionError as e:
        # Ray sends a token only when told to: a cluster started with one turns the driver away
        hint = "" if os.environ.get("RAY_AUTH_MODE") else " (a cluster with token authentication needs RAY_AUTH_MODE=token here)"
        raise ValueError(f"--ray {address}: {str(e).strip().splitlines()[0]}{hint}") from None


def placeable(executor: ExecutorSection) -> None:
    """Refuse a cluster where no node could ever hold one worker."""
    ray = ray_module()
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("GPU", 0) >= executor.gpus_per_worker and r.get("CPU", 0) >= executor.cpus_per_worker for r in nodes):
        have = ", ".join(f"{r.get('CPU', 0):g} CPU {r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
        raise ValueError(f"executor: a worker asks for {executor.cpus_per_worker:g} CPU and {executor.gpus_per_worker:g} GPU "
                         f"(cpus_per_worker, gpus_per_worker), and no node of the Ray cluster has them ({have})")
