"""The wallet run of `scripts/bench.py`: wallets that send one transaction
per request, each from a fresh sender, as single `POST /tx` over keep-alive
connections spread over every node of a fresh devnet.

Every transaction is signed before any clock starts (`node.lab.presign`,
one sender per transaction). The client is wrk (`node.lab.wallet_wrk`, one
process per node, each walking a file of pre-built bodies), so that what is
measured is the nodes. Two phases, each against the nodes and then, with the
same wrk load, against as many bare handlers (`node.lab.wallet_bare`: the
same Hypercorn-on-trio stack, a JSON parse and a 202):

  saturation  as fast as the targets answer, for `wallet_seconds`
  rate        a fixed total rate (`wallet_rate`) for `wallet_rate_seconds`

For the nodes, every 202 is timed from its request's sending to its answer
(wrk) and to its block's event at the node it was sent to (`/events`, as
`node.lab.finality` follows it), and after each phase every acknowledged id
must be committed on every node within `wallet_drain_s`: the ones that are
not are reported. CPU time of every node, bare server and wrk process is
read around each phase.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from node.lab.devnet import Devnet
from node.lab.finality import LoadResult, Tracker, follow_events
from node.lab.harness import say
from node.lab.machine import cpu_seconds, machine_jiffies, machine_share
from node.lab.presign import Signed, presign_timed
from node.lab.stats import latency_summary, nearest_rank
from node.lab.wallet_wrk import WRK_MISSING, find_wrk, run_wrk, write_bodies
from node.ops.procs import ChildProcess, get_json, wait_until

__all__ = ["run_wallet", "wallet_unavailable"]

# Bare server i listens on node i's RPC port + 5 (`Devnet` keeps it free).
BARE_PORT_OFFSET = 5
PROGRESS_EVERY_S = 2.0
# The rate phase's senders: its duration at the rate, and this much more.
RATE_SPARE = 1.2


def wallet_unavailable() -> str | None:
    """Why the wallet run cannot run here (no wrk), or None."""
    return None if find_wrk() is not None else WRK_MISSING


def run_wallet(net: Devnet, chain_id: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Both phases against the nodes of `net` and against bare handlers; the report."""
    nodes = len(net.urls)
    saturation = _presign(chain_id, args.wallet_senders, nodes, seed)
    spare = nodes * args.wallet_connections
    count = math.ceil(args.wallet_rate * args.wallet_rate_seconds * RATE_SPARE) + spare
    fixed = _presign(chain_id, count, nodes, seed + 1)
    phases = (
        ("saturation", saturation, args.wallet_seconds, 0.0),
        ("rate", fixed, args.wallet_rate_seconds, args.wallet_rate),
    )
    report: dict[str, Any] = {
        "nodes": nodes,
        "senders": len(saturation) + len(fixed),
        "connections": nodes * args.wallet_connections,
        "client": f"wrk -t1 -c{args.wallet_connections} --latency per node, node/lab/wallet.lua",
    }
    with (
        tempfile.TemporaryDirectory(prefix="sequencer-wallet-") as tmp,
        _bare_servers(net, Path(tmp)) as bare,
    ):
        for name, signed, seconds, rate in phases:
            files = write_bodies(Path(tmp) / name, signed, nodes)
            logs = Path(tmp) / "logs" / name
            say("wallet", f"{name}: {len(signed)} senders against the nodes ...")
            node = trio.run(
                functools.partial(
                    _drive_nodes, net, signed, files, args, seconds, rate, name, logs / "node"
                )
            )
            say("wallet", f"{name}: the same load against {len(bare)} bare handlers ...")
            bare_run = _drive_bare(net, bare, files, args, seconds, rate, logs / "bare")
            phase = {"target_tx_s": rate or None, "node": node, "bare": bare_run}
            phase["ratio"] = _ratio(node["acknowledged_tx_s"], bare_run["requests_s"])
            phase["ratio_finalized"] = _ratio(node["finalized_tx_s"], bare_run["requests_s"])
            report[name] = phase
            _say_phase(name, phase)
    report["ratio"] = report["saturation"]["ratio"]
    report["acknowledged"] = sum(report[name]["node"]["acknowledged"] for name, *_ in phases)
    report["not_final"] = sum(report[name]["node"]["not_final"] for name, *_ in phases)
    return report


def _presign(chain_id: str, count: int, nodes: int, seed: int) -> list[Signed]:
    # One transaction per sender: every one a fresh wallet (nonce 0).
    return presign_timed("wallet", chain_id, count=count, senders=count, nodes=nodes, seed=seed)


def _ratio(value: float, base: float) -> float | None:
    return round(value / base, 3) if base else None


def _say_phase(name: str, phase: dict[str, Any]) -> None:
    node, bare = phase["node"], phase["bare"]
    say(
        "wallet",
        f"{name}: nodes {node['acknowledged_tx_s']} tx/s acknowledged,"
        f" {node['finalized_tx_s']} tx/s final, bare {bare['requests_s']} req/s,"
        f" ratio {phase['ratio']}, not final {node['not_final']}, non-202 {node['non_202']}",
    )


# ------------------------------------------------------------------ the nodes


async def _drive_nodes(
    net: Devnet,
    signed: list[Signed],
    files: list[Path],
    args: argparse.Namespace,
    seconds: float,
    rate: float,
    label: str,
    logs: Path,
) -> dict[str, Any]:
    """wrk against every node while following every node's blocks; then wait
    (bounded) until every acknowledged transaction is committed on every node."""
    tracker = Tracker(signed, window=len(signed), label=label)
    committed: list[set[str]] = [set() for _ in net.urls]
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    async with client, trio.open_nursery() as nursery:
        for node, url in enumerate(net.urls):
            await nursery.start(follow_events, client, url, node, tracker, committed[node])
        nursery.start_soon(_progress, label, committed, time.perf_counter())
        before, machine, started = _usage(net), machine_jiffies(), time.perf_counter()
        load = await trio.to_thread.run_sync(
            functools.partial(
                run_wrk,
                net.urls,
                files,
                seconds=seconds,
                rate=rate,
                connections=args.wallet_connections,
                wrap=False,
                track=True,
                logs=logs,
            )
        )
        loaded, share = _usage(net), machine_share(machine)
        ours = sum(loaded[0]) - sum(before[0]) + loaded[1] - before[1] + load["client_cpu_s"]
        share["others_cores"] = _others(share, time.perf_counter() - started, ours)
        acked = _apply_acks(load["reports"], tracker)
        drained = time.perf_counter()
        missing = await _drain(set(acked), committed, args.wallet_drain_s)
        drain_s = time.perf_counter() - drained
        after = _usage(net)
        nursery.cancel_scope.cancel()
    not_final = sum(1 for i in acked if any(i not in seen for seen in committed))
    return (
        _node_summary(load, tracker, acked, before, loaded, after)
        | share
        | {
            "final_on_every_node": len(acked) - not_final,
            "not_final": not_final,
            "not_committed_per_node": missing,
            "drain_s": round(drain_s, 2),
        }
    )


async def _progress(label: str, committed: list[set[str]], started: float) -> None:
    while True:
        await trio.sleep(PROGRESS_EVERY_S)
        counts = [len(seen) for seen in committed]
        elapsed = time.perf_counter() - started
        say("wallet", f"{label}: {elapsed:5.1f} s  committed per node {counts}")


def _apply_acks(reports: Sequence[dict[str, Any]], tracker: Tracker) -> list[str]:
    """Each 202 wrk timed into the tracker: its sending and answer times. The acknowledged ids."""
    acked = []
    for report in reports:
        for line in report["acks"]:
            hex_id, sent, answered = line.split(" ")
            i = tracker.index[hex_id]
            tracker.sent[i] = float(sent)
            tracker.on_ack(i, float(answered))
            acked.append(hex_id)
    return acked


async def _drain(acked: set[str], committed: list[set[str]], timeout_s: float) -> list[int]:
    """Wait up to `timeout_s` until every node committed every id of `acked`;
    how many each node still lacks then."""
    deadline = time.perf_counter() + timeout_s
    while True:
        missing = [len(acked - seen) for seen in committed]
        if not any(missing) or time.perf_counter() >= deadline:
            return missing
        await trio.sleep(0.25)


def _usage(net: Devnet) -> tuple[list[float], float]:
    """(CPU seconds of every node, of this process: the followers) so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return net.cpu_seconds(), own.ru_utime + own.ru_stime


def _node_summary(
    load: dict[str, Any],
    tracker: Tracker,
    acked: list[str],
    before: tuple[list[float], float],
    loaded: tuple[list[float], float],
    after: tuple[list[float], float],
) -> dict[str, Any]:
    reports = load["reports"]
    counts = _load_counts(reports)
    indexes = [tracker.index[hex_id] for hex_id in acked]
    result = LoadResult(
        [tracker.sent[i] for i in indexes],
        [tracker.acked[i] for i in indexes],
        [tracker.final[i] for i in indexes],
        Counter(),
        counts["lag_s"],
    ).summary()
    finalized = int(result["finalized"])  # type: ignore[call-overload]
    cpu = [a - b for a, b in zip(after[0], before[0], strict=True)]
    cpu_load = [a - b for a, b in zip(loaded[0], before[0], strict=True)]
    answered = sorted((tracker.acked[i] - tracker.sent[i]) * 1000 for i in indexes)
    window = counts["window_s"]
    return counts | {
        "acknowledged": counts["statuses"].get("202", 0),
        "acknowledged_tx_s": round(counts["statuses"].get("202", 0) / window, 1),
        "acks_timed": len(acked),
        "finalized": finalized,
        # From the first request to the last block's event: the backlog's commit included.
        "finalized_tx_s": result["committed_tx_s"],
        "steady_finalized_tx_s": result["steady_tx_s"],
        "latency_202_ms": latency_summary(answered),
        "finality_ms": result["latency_ms"],
        "cpu_s_per_node": [round(c, 2) for c in cpu],
        "cpu_s_per_node_while_sending": [round(c, 2) for c in cpu_load],
        "cpu_us_per_tx_per_node": round(statistics.mean(cpu) / max(1, finalized) * 1e6, 1),
        "cpu_us_per_tx_each_node": [round(c / max(1, finalized) * 1e6, 1) for c in cpu],
        "nodes_cores_while_sending": round(sum(cpu_load) / window, 2),
        "follower_cpu_s": round(after[1] - before[1], 2),
        **_client(load, counts),
    }


def _others(share: dict[str, float], elapsed: float, ours: float) -> float:
    """Cores the machine spent, while wrk ran, on anything but the bench's
    processes (`ours` CPU seconds in `elapsed`: nodes, bare handlers, wrk, this
    process): another job on a shared machine shows here."""
    busy = share["machine_busy"] * (os.cpu_count() or 1)
    return round(max(0.0, busy - ours / max(elapsed, 1e-3)), 2)


def _load_counts(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the wrk processes of one phase saw, added up."""
    statuses: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for report in reports:
        statuses.update(report["statuses"])
        codes.update(report["codes"])
        errors.update(report["errors"])
    first = min((r["first_sent"] for r in reports if r["first_sent"] > 0), default=0.0)
    last = max(r["last_answer"] for r in reports)
    window = max(1e-3, last - first)
    issued = sum(r["issued"] for r in reports)
    answered = sum(r["requests"] for r in reports)
    return {
        "window_s": round(window, 3),
        "offered": issued,
        "offered_tx_s": round(issued / window, 1),
        "answered": answered,
        "unanswered_at_stop": issued - answered,
        "statuses": dict(statuses),
        "non_202": {code: n for code, n in statuses.items() if code != "202"},
        "non_202_codes": dict(codes),
        "wrk_errors": {kind: n for kind, n in errors.items() if n},
        "bodies_ran_out": any(r["exhausted"] for r in reports),
        "lag_s": round(max(r["lag_s"] for r in reports), 3),
        # wrk's own histogram, of every answer (202 or not), per process.
        "latency_wrk_ms": {
            "p50": [round(r["latency_us"]["50"] / 1000, 2) for r in reports],
            "p99": [round(r["latency_us"]["99"] / 1000, 2) for r in reports],
        },
    }


def _client(load: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    cpu = load["client_cpu_s"]
    return {
        "client_cpu_s": round(cpu, 2),
        "client_cpu_us_per_request": round(cpu / max(1, counts["offered"]) * 1e6, 1),
        "client_cores": round(cpu / counts["window_s"], 3),
    }


# ------------------------------------------------------------------ the bare handlers


@contextlib.contextmanager
def _bare_servers(net: Devnet, logs: Path) -> Iterator[list[tuple[str, ChildProcess]]]:
    """One bare handler per node, on its RPC port + 5; (url, process) of each."""
    urls = [f"http://127.0.0.1:{(urlsplit(url).port or 80) + BARE_PORT_OFFSET}" for url in net.urls]
    with contextlib.ExitStack() as stack:
        servers = []
        for k, url in enumerate(urls):
            argv = [sys.executable, "-m", "node.lab.wallet_bare", url.removeprefix("http://")]
            child = ChildProcess(argv, output=logs / f"bare{k}.log", grace_s=10.0)
            servers.append((url, stack.enter_context(child)))
        for url in urls:
            wait_until(
                functools.partial(lambda u: get_json(f"{u}/health")[0] == 200, url),
                30.0,
                f"the bare handler at {url}",
                poll_s=0.05,
            )
        yield servers


def _drive_bare(
    net: Devnet,
    bare: list[tuple[str, ChildProcess]],
    files: list[Path],
    args: argparse.Namespace,
    seconds: float,
    rate: float,
    logs: Path,
) -> dict[str, Any]:
    """The same wrk load against the bare handlers (files start over when they run out)."""
    pids = [child.pid for _, child in bare]
    before, nodes_before = [cpu_seconds(p) for p in pids], net.cpu_seconds()
    machine, started = machine_jiffies(), time.perf_counter()
    load = run_wrk(
        [url for url, _ in bare],
        files,
        seconds=seconds,
        rate=rate,
        connections=args.wallet_connections,
        wrap=True,
        track=False,
        logs=logs,
    )
    share = machine_share(machine)
    elapsed = time.perf_counter() - started
    cpu = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    idle = [a - b for a, b in zip(net.cpu_seconds(), nodes_before, strict=True)]
    share["others_cores"] = _others(share, elapsed, sum(cpu) + sum(idle) + load["client_cpu_s"])
    counts = _load_counts(load["reports"])
    served = counts["statuses"].get("202", 0)
    latency = sorted(r["latency_us"]["50"] / 1000 for r in load["reports"])
    return (
        counts
        | share
        | {
            "requests_s": round(served / counts["window_s"], 1),
            "latency_wrk_ms_p50_median": round(nearest_rank(latency, 0.5), 2),
            "server_cpu_s": [round(c, 2) for c in cpu],
            "server_cpu_us_per_request": round(sum(cpu) / max(1, served) * 1e6, 1),
            # The devnet idles meanwhile (empty blocks): the CPU it takes from the bare handlers.
            "nodes_idle_cpu_s": [round(c, 2) for c in idle],
            **_client(load, counts),
        }
    )
