"""schemathesis against a live node (issue 8): no 5xx, answers conform to the schema.

The schema is the one a running devnet node serves at `/openapi.json`, and
the requests go to that node over loopback, so what is tested is the real
process (Hypercorn, trio, LevelDB), not the app in a test client.

`test_live_node_conforms_to_its_openapi` is `schemathesis run` from Python:
its engine runs the examples, coverage, fuzzing and stateful phases on every
operation but `/events` (an endless SSE stream), with schema-valid and
schema-violating ("negative") requests. POST /tx and /txs mostly earn 4xx
(random signatures), which must be documented and match the Error schema. A
failed check fails the test with schemathesis's report (the failures, the
response, a curl to replay). Bounded: `MAX_EXAMPLES` per operation, a fixed
seed and deterministic generation under CI (else the report gives the seed),
and `MAX_TIME_S` for the run.

Random inputs rarely hit real data (a committed tx id, a namespace with
transactions, a valid signature), so `test_real_data_conforms_to_the_schema`
sends those, under the same checks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import StopReason, events
from schemathesis.engine.statistic import Statistic

from sequencer.client import Wallet
from sequencer.codec import to_builtins
from sequencer.crypto import PrivateKey
from tests.node.cluster import Cluster, running, wait_until

CI = os.environ.get("CI") == "true"
SEED = 8
MAX_EXAMPLES = 30  # per operation, in the fuzzing phase
MAX_TIME_S = 60.0  # a run takes ~5 s; reaching this means something hangs
REQUEST_TIMEOUT_S = 10
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
NAMESPACES = (0, 1, 2)


@dataclass(frozen=True)
class Devnet:
    cluster: Cluster
    url: str
    committed: list[str]  # tx ids
    pending: str  # a tx id held in the mempool by a nonce gap
    wallet: Wallet


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A ready devnet with committed transactions in a few namespaces, and a pending one."""
    # Hundreds of generated requests from one address: the rate limit has tests of its own.
    root = tmp_path_factory.mktemp("schemathesis") / "devnet"
    with running(root, before_start=Cluster.lift_rate_limit) as cluster:
        url = cluster.url(0)
        wait_until(lambda: httpx.get(f"{url}/ready").status_code == 200, 30, "node 0 ready")
        wallet = Wallet(PrivateKey(bytes([77]) * 32), cluster.layout.chain_id)
        with cluster.client(0) as client:
            ids = [client.send(wallet, b"tx", nonce=n, namespace=n) for n in NAMESPACES]
            for id_ in ids:
                client.wait_final(id_, timeout=30)
            pending = client.send(wallet, b"after a gap", nonce=len(NAMESPACES) + 1)
        yield Devnet(cluster, url, [id_.hex() for id_ in ids], pending.hex(), wallet)


def _config() -> Any:
    return schemathesis.Config.from_dict(
        {
            "request-timeout": REQUEST_TIMEOUT_S,
            "generation": {
                "mode": "all",  # positive and negative
                "max-examples": MAX_EXAMPLES,
                "deterministic": CI,
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                # Any refusal will do: 413 (a batch over `maxItems`) is one.
                "negative_data_rejection": {"expected-statuses": ["4XX", "5XX"]},
            },
            **({"seed": SEED} if CI else {}),
        }
    )


@pytest.fixture(scope="module")
def schema(devnet: Devnet) -> Any:
    return schemathesis.openapi.from_url(f"{devnet.url}/openapi.json", config=_config())


def _report(statistic: Statistic, errors: list[events.NonFatalError], schema: Any) -> str:
    blocks = []
    for label, groups in statistic.failures.items():
        for index, group in enumerate(groups.values(), 1):
            text = group.format(index=index, curl=group.code_sample, config=schema.config.output)
            blocks.append(f"__ {label} __\n{text}")
    blocks += [f"__ {error.label} __\n{error.info.format()}" for error in errors]
    return "\n\n".join(blocks)


def test_live_node_conforms_to_its_openapi(schema: Any) -> None:
    stream = schemathesis.engine.from_schema(schema.exclude(path="/events")).execute()
    deadline = time.monotonic() + MAX_TIME_S
    statistic, errors = Statistic(), []
    finished: events.EngineFinished | None = None
    for event in stream:
        if time.monotonic() > deadline:
            stream.stop()  # the next event is the last
        if isinstance(event, events.ScenarioFinished):
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError):
            errors.append(event)
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            finished = event
    report = _report(statistic, errors, schema)
    if report:
        seed = schema.config.seed
        pytest.fail(f"schemathesis found failures (seed {seed}):\n\n{report}", pytrace=False)
    assert finished is not None
    assert finished.stop_reason == StopReason.COMPLETED, f"stopped: {finished.stop_reason}"
    assert statistic.total_cases > 0


def _real_cases(devnet: Devnet, schema: Any) -> Iterator[Any]:
    """Cases over the devnet's own data: each kind of success the schema describes."""
    blocks = httpx.get(f"{devnet.url}/blocks", params={"full": "true"}).json()["blocks"]
    with_txs = [block for block in blocks if block["txs"]]
    assert with_txs
    yield schema["/blocks"]["GET"].Case(query={"full": "true", "from": 1, "limit": 100})
    yield schema["/blocks/latest"]["GET"].Case(query={"full": "true"})
    for block in with_txs:
        height = block["header"]["height"]
        yield schema["/blocks/{height}"]["GET"].Case(
            path_parameters={"height": height}, query={"full": "true"}
        )
        for namespace in {tx["namespace"] for tx in block["txs"]}:
            parameters = {"namespace": namespace, "height": height}
            yield schema["/namespaces/{namespace}/blocks/{height}"]["GET"].Case(
                path_parameters=parameters
            )
    for id_ in [*devnet.committed, devnet.pending, "0X" + devnet.committed[0].upper()]:
        yield schema["/tx/{tx_id}"]["GET"].Case(path_parameters={"tx_id": id_})
    sender = {"sender": devnet.wallet.address}
    yield schema["/accounts/{sender}"]["GET"].Case(path_parameters=sender)
    batches = httpx.get(f"{devnet.url}/batches").json()["batches"]
    for batch in batches[:1]:
        parameters = {"number": batch["batch_number"]}
        yield schema["/batches/{number}"]["GET"].Case(path_parameters=parameters)
    # Writes a real signature gets past: one accepted, one batch of mixed results.
    fresh = Wallet(PrivateKey(bytes([78]) * 32), devnet.wallet.chain_id)
    first, second = (to_builtins(fresh.sign(n, b"real", gas_price=1)) for n in (0, 1))
    yield schema["/tx"]["POST"].Case(body=first, media_type="application/json")
    batch = [first, second, {**second, "nonce": 2}, {"fee": 1}]  # duplicate, accepted, bad
    yield schema["/txs"]["POST"].Case(body=batch, media_type="application/json")


def test_real_data_conforms_to_the_schema(devnet: Devnet, schema: Any) -> None:
    statuses = []
    for case in _real_cases(devnet, schema):
        response = case.call_and_validate(timeout=REQUEST_TIMEOUT_S)
        statuses.append((f"{case.method} {case.formatted_path}", response.status_code))
    assert all(status in (200, 202) for _, status in statuses), statuses
