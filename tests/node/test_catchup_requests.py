"""Catch-up requests must differ each time: gossip drops content it has seen."""

from __future__ import annotations

from consensus.sync import SyncRequest
from node.daemon.messages import decode_sync
from tests.node.test_storage_failure import Rig


def test_repeated_requests_for_one_height_are_distinct_messages() -> None:
    rig = Rig()
    sent: list[bytes] = []
    rig.gossip.send_nowait = lambda peer, topic, data: sent.append(data)  # type: ignore[method-assign]
    for _ in range(3):
        rig.driver.host._request(2, SyncRequest(5, 64))
    assert len(set(sent)) == 3  # identical bytes would be dropped as seen by the peer
    for data in sent:
        request = decode_sync(data)
        assert isinstance(request, SyncRequest)
        assert (request.from_height, request.max_blocks) == (5, 64)


def test_a_request_without_nonce_still_decodes() -> None:
    assert decode_sync(b"Q" + bytes([0x92, 0x05, 0x40])) == SyncRequest(5, 64)
