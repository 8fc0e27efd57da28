"""`GET /events` on a real node: a rollup follows its namespace, in order,
across a restart of the node it listens to (resuming from its last height)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from sequencer.client import Wallet
from sequencer.codec import to_json
from sequencer.crypto import PrivateKey
from sequencer.genesis import load_genesis
from sequencer.ids import tx_id
from sequencer.light_protocol import Trust, verify_namespace
from tests.node.cluster import Cluster, running
from tests.node.wsclient import ws_messages

NAMESPACE = 5


def send(cluster: Cluster, wallets: list[Wallet], first_nonce: int, count: int) -> None:
    with cluster.client(0) as client:
        last = b""
        for nonce in range(first_nonce, first_nonce + count):
            for wallet in wallets:
                last = client.send(wallet, b"ns%d n%d" % (wallet.namespace, nonce), nonce=nonce)
        client.wait_final(last, timeout=60)


def follow(
    cluster: Cluster, index: int, until_height: int, last_event_id: int | None
) -> list[dict]:
    """Read SSE block events from node `index` until `until_height` (inclusive)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    params = (
        {"namespace": NAMESPACE}
        if last_event_id is not None
        else {
            "namespace": NAMESPACE,
            "from": 1,
        }
    )
    events: list[dict] = []
    fields: dict[str, str] = {}
    url = f"{cluster.url(index)}/events"
    with httpx.stream("GET", url, params=params, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue  # keepalive
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            if fields.get("event") == "block":
                event = {"id": int(fields["id"]), "block": json.loads(fields["data"])}
                events.append(event)
                if event["id"] >= until_height:
                    break
            fields = {}
    return events


def test_a_namespace_followed_across_a_restart_gets_exactly_its_transactions(
    tmp_path: Path,
) -> None:
    with running(tmp_path / "devnet") as cluster:
        chain_id = cluster.layout.chain_id
        wallets = [Wallet(PrivateKey(bytes([n]) * 32), chain_id, namespace=n) for n in (5, 6, 7)]
        send(cluster, wallets, 0, 10)
        first = follow(cluster, 1, cluster.height(1), None)
        cluster.stop(1)
        send(cluster, wallets, 10, 10)  # while the followed node is down
        cluster.start(1)
        target = cluster.height(0)
        cluster.wait_height(1, target)
        rest = follow(cluster, 1, target, last_event_id=first[-1]["id"])
        events = first + rest
        heights = [event["id"] for event in events]
        assert heights == list(range(1, target + 1))  # every block once, in order
        trust = Trust(load_genesis(cluster.home(0) / "genesis.json"))
        for event in events:  # each event is the namespace's view, with its proof
            verify_namespace(trust, event["block"], NAMESPACE, event["id"])
        got = [
            {k: v for k, v in tx.items() if k != "tx_id"}
            for event in events
            for tx in event["block"]["txs"]
        ]
        assert all(tx["namespace"] == NAMESPACE for tx in got)
        # Exactly the chain's namespace-5 transactions, in block order.
        with cluster.client(2) as client:
            expected = [
                tx
                for height in range(1, target + 1)
                for tx in client.block(height, full=True)["txs"]
                if tx["namespace"] == NAMESPACE
            ]
        assert got == expected
        assert len(got) == 20
        # POST /tx?wait=final answers once the transaction is committed: no polling.
        tx = wallets[0].sign(20, b"waited for", 1)
        waited = httpx.post(
            f"{cluster.url(2)}/tx?wait=final",
            content=to_json(tx),
            timeout=40,
            headers={"content-type": "application/json"},
        )
        assert waited.status_code == 200, waited.text
        status = waited.json()
        assert (status["tx_id"], status["status"]) == (tx_id(tx).hex(), "committed")
        block = cluster.client(2).block(status["height"])
        assert status["block_id"] == block["block_id"]
        # The same stream over WebSocket, from the start, on the restarted node.
        views, closed = ws_messages(cluster.url(1), f"/events?from=1&namespace={NAMESPACE}", target)
        assert closed is None
        for view in views:
            verify_namespace(trust, view, NAMESPACE, view["height"])

        def uncertified(view: dict) -> dict:
            # A tip's certificate is its node's own until the next block names
            # the canonical one, so certificates may differ from the SSE read.
            return {k: v for k, v in view.items() if k != "certificate"}

        assert [uncertified(v) for v in views] == [uncertified(e["block"]) for e in events]
