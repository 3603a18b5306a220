"""The Ray executor: actors that each load the pipeline by name and run groups of runs, replaced
when they die; results go to shared storage through the same atomic writes."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ..errors import SweepError
from .identity import model_fingerprint
from .local import _as_dict, _run_group
from .store import _valid

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 3.0  #: seconds a Ray address has to answer before a sweep gives up on it


def _host_port(address: str) -> tuple[str, int]:
    text = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"ray address {address!r}: expected HOST:PORT (the head's GCS port, 6379 by default), "
                         "ray://HOST:PORT (Ray Client, 10001) or 'auto'")
    return host.strip("[]"), int(port)


#: addresses that answered in this process, and when: a CLI sweep probes its address once, not once
#: before the model loads, once in sweep() and once on joining
_ANSWERED: dict[str, float] = {}
#: how long an answer counts (a cluster that went away since is found by ray.init itself)
ANSWER_VALID_S = 120.0


def check_address(address, timeout: float = CONNECT_TIMEOUT) -> None:
    """Something must answer at ``address`` within ``timeout`` seconds: a wrong or unreachable address
    fails here in seconds, naming it, instead of leaving Ray to retry for minutes. An address that
    answered in this process in the last :data:`ANSWER_VALID_S` seconds is not probed again."""
    import socket
    import time

    if address in (None, "", "auto", "local"):
        return
    if time.monotonic() - _ANSWERED.get(str(address), -1e9) < ANSWER_VALID_S:
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
    _ANSWERED[str(address)] = time.monotonic()


_AUTH_FIX = ("the cluster uses token authentication: set RAY_AUTH_MODE=token here and give this machine the "
             "cluster's token as a file only you can read (copy the head's ~/.ray/auth_token, which "
             "`ray get-auth-token` on the head prints, to ~/.ray/auth_token with chmod 600, or point "
             "RAY_AUTH_TOKEN_PATH at such a file)")


def _probe_gcs(address: str, host: str, port: int, timeout: float) -> None:
    """Ask the head's GCS for its cluster id, as ``ray.init`` would first do, with a short timeout: a
    refused token answers at once here, where ``ray.init`` retries for about 20 s before a
    ConnectionError that does not say why. (Ray's own client, ``ray._raylet.InnerGcsClient``; skipped
    where a Ray version lacks it.)"""
    _loopback_stays_loopback(host)
    try:
        from ray._raylet import InnerGcsClient

        client_for = InnerGcsClient.standalone
    except (ImportError, AttributeError):  # a Ray without this client: ray.init's own checks remain
        return
    try:
        gcs = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 keeps its brackets
        client = client_for(gcs, None, int(timeout * 1000))
        metadata = client.internal_kv_get(b"CLUSTER_METADATA", b"cluster", timeout)
    except (TypeError, AttributeError) as e:  # the private client's signature moved in another Ray: skip the probe
        log.debug("ray address %s: GCS probe skipped (%s)", address, e)
        return
    except Exception as e:  # noqa: BLE001 - Ray's errors differ by version; the message decides
        text = str(e)
        if "auth" in text.lower() or "token" in text.lower():
            why = "InvalidAuthToken" if "InvalidAuthToken" in text else "authentication failed"
            raise SweepError(f"ray address {address!r}: the cluster refused this client ({why}); {_AUTH_FIX}") from None
        raise SweepError(f"ray address {address!r}: {host}:{port} answers but is not a Ray head's GCS "
                         f"({text.splitlines()[0][:160] if text else type(e).__name__}); pass the address "
                         "`ray start --head` printed") from None
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
    try:
        cluster = json.loads(metadata)
        check_version_info(cluster, "this machine")
    except (ValueError, TypeError, AttributeError, KeyError) as e:  # metadata or a private API of another Ray
        log.debug("ray address %s: version check skipped (%s)", address, e)
        return
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
    if loopback and "ray" not in sys.modules:
        # Ray reads the flag when it is imported: set it for that import alone, so that no child of this
        # process (a `ray start` from the same shell, ffmpeg, a kernel) inherits it
        key = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
        had = os.environ.get(key)
        os.environ.setdefault(key, "0")
        try:
            import ray  # noqa: F401
        finally:
            if had is None:
                os.environ.pop(key, None)


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

    def __init__(self, model: str, fingerprint: str, threads: int, memory=None, source: str | None = None):
        import torch

        from ..models import load_pipeline

        torch.set_num_threads(max(1, threads))
        self.pipe = load_pipeline(source or model, memory=memory)  # a folder by its absolute path
        self.pipe.cogviz_model = model  # the driver's name, which the fingerprint and run ids hash
        self.text_cache = {}
        mine = model_fingerprint(self.pipe)
        if mine != fingerprint:
            raise SweepError(f"the actor's {model!r} has weights fingerprint {mine}, the driver's {fingerprint}: "
                             "give every node the same weights")

    def run(self, run_dicts: list[dict], fitted, job: dict) -> list[str]:
        _check_shared(job, run_dicts)
        return _run_group(self.pipe, run_dicts, fitted, job, text_cache=self.text_cache)


def _check_shared(job: dict, run_dicts: list[dict]) -> None:
    """Where an actor runs, the driver's results folder must be there with this sweep's manifest
    (written before any actor starts): otherwise the storage is not shared and the runs would land on
    this node's own disk."""
    from .store import read_manifest

    out = Path(job["out_dir"])
    try:
        ids = {i for s in read_manifest(out) for i in s.get("run_ids", [])}
    except (OSError, SweepError):
        ids = set()
    missing = [d["run_id"] for d in run_dicts if d["run_id"] not in ids]
    if not out.is_absolute() or missing:
        import socket

        raise SweepError(f"runs {', '.join(missing) or '(all)'}: the results folder {out} on node "
                         f"{socket.gethostname()} does not hold this sweep's manifest; the results folder "
                         "must be an absolute path on storage every node shares")


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
    source = getattr(pipe, "cogviz_source", None)
    Actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_SweepActor)

    def spawn():
        return Actor.remote(model, fingerprint, max(1, int(num_cpus)), memory, source)

    images = [ray.put(f) for f in fitted]
    pending = [(g, 0) for g in groups]
    spawned = [spawn() for _ in range(num_actors)]
    in_flight = {}

    def submit(actor):
        group, tries = pending.pop(0)
        ref = actor.run.remote([_as_dict(r) for r in group], images[group[0].image_index], job)
        in_flight[ref] = (actor, group, tries)

    for actor in spawned:
        if pending:
            submit(actor)
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, group, tries = in_flight.pop(ready[0])
            try:
                ray.get(ready[0])
            except RayActorError as e:  # the actor died (killed, node lost): replace it, redo what it lost
                _raise_init_failure(e)
                if tries + 1 > max_retries:
                    raise SweepError(f"runs {', '.join(r.run_id for r in group)} lost their actor {tries + 1} "
                                     f"times; giving up ({_first_line(e)})") from None
                ray.kill(actor)  # "unavailable" may still be running: it must not write on beside the new one
                actor = spawn()
                spawned.append(actor)
                lost = [r for r in group if _valid(Path(job["out_dir"]) / "runs" / r.run_id) is None]
                advance(len(group) - len(lost))
                if lost:
                    pending.insert(0, (lost, tries + 1))
            else:
                _check_written(job, group)
                advance(len(group))
            if pending:
                submit(actor)
    finally:
        _stop(ray, in_flight, spawned)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _raise_init_failure(e) -> None:
    """An actor whose constructor failed (no model on that node, other weights) fails the same way
    when respawned: say why at once instead of retrying."""
    if getattr(e, "actor_init_failed", False):
        cause = getattr(e, "error_msg", "") or str(e)
        lines = [ln for ln in cause.splitlines() if "Error" in ln and ":" in ln]
        raise SweepError(f"a Ray actor could not start: {(lines[-1] if lines else _first_line(e)).strip()[:300]}") from None


def _check_written(job: dict, group) -> None:
    """The actor says it wrote these runs: they must be in the driver's ``out_dir`` too, or the
    storage is not shared between the nodes and the driver would return a sweep with runs missing."""
    missing = [r.run_id for r in group if _valid(Path(job["out_dir"]) / "runs" / r.run_id) is None]
    if missing:
        raise SweepError(f"runs {', '.join(missing)}: a Ray actor wrote them but they are not in {job['out_dir']} "
                         "on this machine; the results folder must be storage every node shares (the same path "
                         "on each)")


def _stop(ray, in_flight: dict, actors: list) -> None:
    """After the sweep, or when it fails or is interrupted: cancel what is in flight (actor tasks take
    only a plain cancel) and kill every actor this sweep started, so none goes on computing or writing
    into the results folder after the driver stopped. Runs are renamed into place whole, so a killed
    actor leaves at most a temporary folder, never a half-written run. The original error, if any,
    propagates unchanged."""
    for ref in list(in_flight):
        try:
            ray.cancel(ref)
        except Exception:  # noqa: BLE001 - a task that already finished or whose actor died
            pass
    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - an actor that is already gone
            pass
