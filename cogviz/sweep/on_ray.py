"""The Ray executor: actors that each load the pipeline by name and run groups of runs, replaced
when they die; results go to shared storage through the same atomic writes."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SweepError
from .identity import model_fingerprint
from .local import _as_dict, _run_group
from .store import _valid

CONNECT_TIMEOUT = 3.0  #: seconds a Ray address has to answer before a sweep gives up on it


def _host_port(address: str) -> tuple[str, int]:
    text = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"ray address {address!r}: expected HOST:PORT (the head's GCS port, 6379 by default), "
                         "ray://HOST:PORT (Ray Client, 10001) or 'auto'")
    return host.strip("[]"), int(port)


def check_address(address, timeout: float = CONNECT_TIMEOUT) -> None:
    """Something must answer at ``address`` within ``timeout`` seconds: a wrong or unreachable address
    fails here in seconds, naming it, instead of leaving Ray to retry for minutes."""
    import socket

    if address in (None, "", "auto", "local"):
        return
    host, port = _host_port(str(address))
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = "connection refused" if isinstance(e, ConnectionRefusedError) else (
            f"no answer within {timeout:g} s" if isinstance(e, TimeoutError) else str(e) or type(e).__name__)
        raise SweepError(f"ray address {address!r}: nothing answers at {host}:{port} ({why}); start the head there "
                         f"with `ray start --head --port {port}`, or pass the address `ray start` printed") from None
    if not str(address).startswith("ray://"):
        _probe_gcs(str(address), host, port, timeout)


_AUTH_FIX = ("the cluster uses token authentication: set RAY_AUTH_MODE=token here and give this shell the "
             "cluster's token (`ray get-auth-token` on the head prints it; export it as RAY_AUTH_TOKEN, or copy "
             "the head's ~/.ray/auth_token)")


def _probe_gcs(address: str, host: str, port: int, timeout: float) -> None:
    """Ask the head's GCS for its cluster id, as ``ray.init`` would first do, with a short timeout: a
    refused token answers at once here, where ``ray.init`` retries for about 20 s before a
    ConnectionError that does not say why. (Ray's own client, ``ray._raylet.InnerGcsClient``; skipped
    where a Ray version lacks it.)"""
    _loopback_stays_loopback(host)
    try:
        from ray._raylet import InnerGcsClient
    except ImportError:
        return
    try:
        gcs = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 keeps its brackets
        client = InnerGcsClient.standalone(gcs, None, int(timeout * 1000))
        metadata = client.internal_kv_get(b"CLUSTER_METADATA", b"cluster", timeout)
    except Exception as e:  # noqa: BLE001 - Ray's errors differ by version; the message decides
        text = str(e)
        if "auth" in text.lower() or "token" in text.lower():
            why = "InvalidAuthToken" if "InvalidAuthToken" in text else "authentication failed"
            raise SweepError(f"ray address {address!r}: the cluster refused this client ({why}); {_AUTH_FIX}") from None
        raise SweepError(f"ray address {address!r}: {host}:{port} answers but is not a Ray head's GCS "
                         f"({text.splitlines()[0][:160]}); pass the address `ray start --head` printed") from None
    _check_versions(address, metadata)


def _check_versions(address: str, metadata: bytes | None) -> None:
    """The cluster's Ray and Python versions against this process's, by Ray's own rule
    (``ray._private.utils.check_version_info``), before ``ray.init`` joins and fails later, less clearly."""
    import json

    try:
        from ray._private.utils import check_version_info
    except ImportError:
        return
    if not metadata:
        return
    cluster = json.loads(metadata)
    try:
        check_version_info(cluster, "this machine")
    except RuntimeError:
        import platform

        import ray

        raise SweepError(f"ray address {address!r}: Ray versions differ (the cluster runs Ray "
                         f"{cluster.get('ray_version')} on Python {cluster.get('python_version')}, this machine Ray "
                         f"{ray.__version__} on Python {platform.python_version()}); install the cluster's versions "
                         f"here (pip install 'ray=={cluster.get('ray_version')}') or reach the cluster from one of "
                         "its nodes (`ray job submit`)") from None


def _loopback_stays_loopback(host: str) -> None:
    """A loopback address means this machine: without this, Ray may replace 127.0.0.1 by the node's
    interface address, which a head bound to loopback does not listen on."""
    import ipaddress

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def connect(address) -> None:
    """Join the Ray cluster at ``address`` (None: start a local Ray) before any result is written; each
    failure is one line that names the address, what happened and the fix."""
    try:
        import ray
    except ImportError:
        raise SweepError("backend='ray' needs Ray: pip install 'cogviz[cluster]'") from None
    if ray.is_initialized():
        return
    # no address: RAY_ADDRESS (set inside a Ray job), else a new local Ray — never whatever cluster
    # /tmp/ray last recorded (it may be long gone)
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    check_address(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - Ray raises several types here; one clear error instead
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        if "auth" in str(e).lower() or "token" in str(e).lower():
            raise SweepError(f"ray address {address!r}: the cluster refused this client ({first}); {_AUTH_FIX}") from None
        if "version" in str(e).lower():
            raise SweepError(f"ray address {address!r}: Ray versions differ ({first}); install the cluster's Ray "
                             "version here") from None
        raise SweepError(f"ray address {address!r}: could not join the cluster ({first})") from None


class _SweepActor:
    """One pipeline per actor; groups of runs (one (image, prompt, seed) each) arrive one at a time."""

    def __init__(self, model: str, fingerprint: str, threads: int, memory=None):
        import torch

        from ..models import load_pipeline

        torch.set_num_threads(max(1, threads))
        self.pipe = load_pipeline(model, memory=memory)
        self.text_cache = {}
        mine = model_fingerprint(self.pipe)
        if mine != fingerprint:
            raise SweepError(f"the actor's {model!r} has weights fingerprint {mine}, the driver's {fingerprint}: "
                             "give every node the same weights")

    def run(self, run_dicts: list[dict], fitted, job: dict) -> list[str]:
        return _run_group(self.pipe, run_dicts, fitted, job, text_cache=self.text_cache)


def _run_on_ray(pipe, groups, fitted, job, advance, *, address=None, num_actors=None, num_gpus=None, num_cpus=1,
                max_retries=3, memory=None):
    try:
        import ray
        from ray.exceptions import RayActorError
    except ImportError:
        raise SweepError("backend='ray' needs Ray: pip install 'cogviz[cluster]'") from None
    if not groups:
        return
    if not ray.is_initialized():
        connect(address)
    gpus = ray.cluster_resources().get("GPU", 0)
    if num_gpus is None:
        num_gpus = 1 if gpus else 0
    if num_actors is None:
        num_actors = int(gpus // num_gpus) if num_gpus else 2
    # more groups than actors keeps every actor busy: split large groups when there are few
    while len(groups) < num_actors and max(len(g) for g in groups) > 1:
        big = max(groups, key=len)
        groups.remove(big)
        groups += [big[: len(big) // 2], big[len(big) // 2:]]
    num_actors = max(1, min(num_actors, len(groups)))
    model, fingerprint = pipe.cogviz_model, model_fingerprint(pipe)
    Actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_SweepActor)

    def spawn():
        return Actor.remote(model, fingerprint, max(1, int(num_cpus)), memory)

    images = [ray.put(f) for f in fitted]
    pending = [(g, 0) for g in groups]
    actors = [spawn() for _ in range(num_actors)]
    in_flight = {}

    def submit(actor):
        group, tries = pending.pop(0)
        ref = actor.run.remote([_as_dict(r) for r in group], images[group[0].image_index], job)
        in_flight[ref] = (actor, group, tries)

    for actor in actors:
        if pending:
            submit(actor)
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, group, tries = in_flight.pop(ready[0])
            try:
                ray.get(ready[0])
                advance(len(group))
            except RayActorError:  # the actor died (killed, node lost): replace it, redo what it lost
                if tries + 1 > max_retries:
                    raise SweepError(f"runs {', '.join(r.run_id for r in group)} lost their actor {tries + 1} "
                                     "times; giving up") from None
                actor = spawn()
                lost = [r for r in group if _valid(Path(job["out_dir"]) / "runs" / r.run_id) is None]
                advance(len(group) - len(lost))
                if lost:
                    pending.insert(0, (lost, tries + 1))
            if pending:
                submit(actor)
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
