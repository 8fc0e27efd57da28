"""The ethereum sink against a real anvil (tests/anvil.py), one fresh chain per test.

No mocks: every check that something is (or is not) on the L1 asks anvil
directly over JSON-RPC (`Anvil.rpc`), independently of the sink. Anvil
automines (one block per transaction) unless a test needs a transaction to
stay pending (`no_mining=True`, then blocks come from `evm_mine`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import trio

from sequencer.ids import encode_batch
from sequencer.l1.base import L1ConflictError, L1Error, L1UnavailableError, PostedBatch
from sequencer.l1.ethereum import CALLDATA_PREFIX, EthereumSink
from sequencer.types import BatchCommitment
from tests.anvil import Anvil, require_anvil

CHAIN = "devnet-1"
INBOX = "0x00000000000000000000000000000000000b47c4"
OTHER = "0x000000000000000000000000000000000000dead"
REVERT_CODE = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT: every call to it fails
REQUEST_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def anvil_binary() -> Path:
    return require_anvil()


@pytest.fixture
def anvil(anvil_binary: Path) -> Iterator[Anvil]:
    with Anvil(binary=anvil_binary) as node:
        yield node


@pytest.fixture
def manual_anvil(anvil_binary: Path) -> Iterator[Anvil]:
    """Mines only on `evm_mine`: transactions stay pending until then."""
    with Anvil(binary=anvil_binary, no_mining=True) as node:
        yield node


def make_batch(number: int, *, variant: int = 0, chain_id: str = CHAIN) -> BatchCommitment:
    return BatchCommitment(
        chain_id=chain_id,
        batch_number=number,
        first_height=1 + 10 * number,
        last_height=10 + 10 * number,
        blocks_root=bytes([number % 256, variant]) * 16,
        last_commit_id=bytes([0xC0, number % 256]) * 16,
    )


def make_sink(anvil: Anvil, **options: Any) -> EthereumSink:
    settings: dict[str, Any] = {
        "poll_s": 0.05,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "stuck_after_s": 30.0,
    }
    settings.update(options)
    return EthereumSink(anvil.url, anvil.private_key, INBOX, CHAIN, **settings)


def run(main: Callable[[], Awaitable[None]]) -> None:
    trio.run(main)


def calldata(batch: BatchCommitment) -> str:
    return "0x" + (CALLDATA_PREFIX + encode_batch(batch)).hex()


async def post(sink: EthereumSink, batch: BatchCommitment) -> str:
    return await sink.post(batch, encode_batch(batch))


async def mine_until(anvil: Anvil, done: trio.Event) -> None:
    """Mine a block every 50 ms until `done` (a no-mining anvil's block producer)."""
    while not done.is_set():
        anvil.mine()
        await trio.sleep(0.05)


def steal_nonce(anvil: Anvil, nonce: int) -> None:
    """Replace our pending transaction of `nonce` with another one (same key, higher fees)."""
    gwei = 10**9
    anvil.rpc("eth_sendTransaction", {
        "from": anvil.address, "to": OTHER, "nonce": hex(nonce),
        "maxFeePerGas": hex(20 * gwei), "maxPriorityFeePerGas": hex(10 * gwei),
    })  # fmt: skip


# ------------------------------------------------------------------ post and read back


def test_post_sends_0x01_and_the_encoding_to_the_inbox_and_reads_it_back(anvil: Anvil) -> None:
    batch = make_batch(0)

    async def main() -> None:
        sink = make_sink(anvil)
        reference = await post(sink, batch)
        await sink.wait_confirmed(reference)

        tx = anvil.rpc("eth_getTransactionByHash", reference)
        assert tx["input"] == calldata(batch)
        assert tx["to"] == INBOX
        assert tx["from"] == anvil.address
        assert int(tx["value"], 16) == 0
        assert tx["type"] == "0x2"  # EIP-1559 on anvil
        assert anvil.rpc("eth_getTransactionReceipt", reference)["status"] == "0x1"

        assert await sink.posted() == [PostedBatch(batch, encode_batch(batch), reference, True)]
        await sink.aclose()

    run(main)


def test_posted_ignores_what_is_not_a_batch_of_ours(anvil: Anvil) -> None:
    """Other senders, other addresses, garbage, other chains, reverted calls, duplicates."""
    ours, foreign = make_batch(0), make_batch(0, chain_id="other-chain")
    stranger = anvil.addresses[1]

    def send(sender: str, to: str, data: str, **extra: Any) -> str:
        tx = {"from": sender, "to": to, "data": data, **extra}
        tx_hash = anvil.rpc("eth_sendTransaction", tx)
        anvil.wait_receipt(tx_hash)
        return tx_hash

    send(anvil.address, OTHER, calldata(ours))  # not the inbox
    send(stranger, INBOX, calldata(ours))  # not our sender
    send(anvil.address, INBOX, "0x02" + encode_batch(ours).hex())  # another version byte
    send(anvil.address, INBOX, "0x01c0ffee")  # not a batch
    send(anvil.address, INBOX, calldata(foreign))  # another sequencer chain
    first = send(anvil.address, INBOX, calldata(ours))
    second = send(anvil.address, INBOX, calldata(ours))  # the same batch again: a duplicate
    anvil.rpc("anvil_setCode", INBOX, REVERT_CODE)
    send(anvil.address, INBOX, calldata(make_batch(1)), gas="0x20000")  # mined, reverted
    anvil.rpc("anvil_setCode", INBOX, "0x")

    async def main() -> None:
        sink = make_sink(anvil)
        posted = await sink.posted()
        assert [(p.batch, p.reference) for p in posted] == [(ours, first)]
        assert [p.reference for p in sink.duplicates] == [second]
        assert (sink.skipped_undecodable, sink.skipped_other_chain) == (1, 1)
        assert sink.skipped_reverted == 1
        # a repost finds the first one: nothing is sent
        nonce = anvil.nonce(anvil.address)
        assert await post(sink, ours) == first
        assert anvil.nonce(anvil.address, "pending") == nonce
        await sink.aclose()

    run(main)


def test_repost_of_the_same_batch_returns_the_same_transaction(anvil: Anvil) -> None:
    batch = make_batch(0)

    async def main() -> None:
        sink = make_sink(anvil)
        reference = await post(sink, batch)
        assert await post(sink, batch) == reference
        await sink.wait_confirmed(reference)
        assert await post(sink, batch) == reference
        assert anvil.nonce(anvil.address, "pending") == 1
        await sink.aclose()

    run(main)


def test_another_encoding_under_a_posted_number_is_a_conflict(anvil: Anvil) -> None:
    async def main() -> None:
        sink = make_sink(anvil)
        reference = await post(sink, make_batch(0))
        anvil.wait_receipt(reference)
        with pytest.raises(L1ConflictError, match=f"L1 holds another batch 0.*{reference}"):
            await post(sink, make_batch(0, variant=1))
        assert anvil.nonce(anvil.address, "pending") == 1
        await sink.aclose()

    run(main)


def test_arguments_that_are_our_bug_are_value_errors(anvil: Anvil) -> None:
    async def main() -> None:
        sink = make_sink(anvil)
        with pytest.raises(ValueError, match="chain"):
            await post(sink, make_batch(0, chain_id="other-chain"))
        with pytest.raises(ValueError, match="not the encoding"):
            await sink.post(make_batch(0), encode_batch(make_batch(1)))
        await sink.aclose()

    run(main)
    with pytest.raises(ValueError, match="private key"):
        EthereumSink(anvil.url, "0x1234", INBOX, CHAIN)
    with pytest.raises(ValueError, match="inbox"):
        EthereumSink(anvil.url, anvil.private_key, "0xb47c4", CHAIN)
    with pytest.raises(ValueError, match="fee_bump_percent"):
        EthereumSink(anvil.url, anvil.private_key, INBOX, CHAIN, fee_bump_percent=5)


# ------------------------------------------------------------------ confirmations


def test_wait_confirmed_waits_for_the_confirmation_depth(anvil: Anvil) -> None:
    async def main() -> None:
        sink = make_sink(anvil, confirmations=2)
        reference = await post(sink, make_batch(0))
        anvil.wait_receipt(reference)  # automined: 1 block deep
        assert [p.confirmed for p in await sink.posted()] == [False]
        confirmed = trio.Event()

        async def wait() -> None:
            await sink.wait_confirmed(reference)
            confirmed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.sleep(0.5)  # ten polls
            assert not confirmed.is_set()
            anvil.mine()
            with trio.fail_after(2):
                await confirmed.wait()
        assert [p.confirmed for p in await sink.posted()] == [True]
        await sink.aclose()

    run(main)


def test_a_reverted_batch_transaction_is_an_l1_error(manual_anvil: Anvil) -> None:
    anvil = manual_anvil

    async def main() -> None:
        sink = make_sink(anvil)
        reference = await post(sink, make_batch(0))
        anvil.rpc("anvil_setCode", INBOX, REVERT_CODE)  # the inbox now rejects everything
        anvil.mine()
        with pytest.raises(L1Error, match="reverted") as caught:
            await sink.wait_confirmed(reference)
        assert not isinstance(caught.value, L1UnavailableError)
        assert await sink.posted() == []
        assert sink.skipped_reverted == 1
        # and the gas estimate of the next post says why, as a non-retryable error
        with pytest.raises(L1Error, match="eth_estimateGas") as caught:
            await post(sink, make_batch(0))
        assert not isinstance(caught.value, L1UnavailableError)
        await sink.aclose()

    run(main)


# ------------------------------------------------------------------ stuck transactions


def test_a_stuck_transaction_is_replaced_with_bumped_fees(manual_anvil: Anvil) -> None:
    anvil = manual_anvil
    bump = Fraction(25, 2)

    async def main() -> None:
        sink = make_sink(anvil, stuck_after_s=0.5, fee_bump_percent=float(bump))
        original = await post(sink, make_batch(0))
        before = anvil.rpc("eth_getTransactionByHash", original)
        confirmed = trio.Event()

        async def wait() -> None:
            await sink.wait_confirmed(original)
            confirmed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            with trio.fail_after(3):
                while len(sink.transactions_for(original)) < 2:
                    await trio.sleep(0.02)
            assert not confirmed.is_set()
            anvil.mine()
            with trio.fail_after(2):
                await confirmed.wait()

        original_, replacement = sink.transactions_for(original)
        assert original_ == original
        assert sink.mined_hash(original) == replacement
        assert anvil.rpc("eth_getTransactionReceipt", original) is None
        assert anvil.rpc("eth_getTransactionReceipt", replacement)["status"] == "0x1"
        after = anvil.rpc("eth_getTransactionByHash", replacement)
        assert after["nonce"] == before["nonce"]
        assert after["input"] == before["input"]
        for fee in ("maxFeePerGas", "maxPriorityFeePerGas"):
            old, new = int(before[fee], 16), int(after[fee], 16)
            assert new >= math.ceil(old * (1 + bump / 100)), fee
        assert [p.reference for p in await sink.posted()] == [replacement]
        await sink.aclose()

    run(main)


def test_a_chain_without_eip1559_gets_legacy_transactions_bumped_alike(
    anvil_binary: Path,
) -> None:
    async def main(anvil: Anvil) -> None:
        sink = make_sink(anvil, stuck_after_s=0.3)
        original = await post(sink, make_batch(0))
        before = anvil.rpc("eth_getTransactionByHash", original)
        assert before["type"] == "0x0"
        confirmed = trio.Event()

        async def wait() -> None:
            await sink.wait_confirmed(original)
            confirmed.set()

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                while len(sink.transactions_for(original)) < 2:
                    await trio.sleep(0.02)
                nursery.start_soon(mine_until, anvil, confirmed)
        assert anvil.rpc("eth_getTransactionByHash", original) is None  # replaced
        after = anvil.rpc("eth_getTransactionByHash", sink.mined_hash(original))
        assert after["type"] == "0x0"
        old, new = int(before["gasPrice"], 16), int(after["gasPrice"], 16)
        assert new >= math.ceil(old * Fraction(1125, 1000))
        await sink.aclose()

    with Anvil(binary=anvil_binary, no_mining=True, extra_args=("--hardfork", "berlin")) as node:
        trio.run(main, node)


def test_a_nonce_taken_by_another_transaction_gets_the_batch_sent_again(
    manual_anvil: Anvil,
) -> None:
    """Someone else with our key replaces our pending transaction: the batch must still land."""
    anvil = manual_anvil
    batch = make_batch(0)

    async def main() -> None:
        sink = make_sink(anvil)
        original = await post(sink, batch)
        steal_nonce(anvil, 0)
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(mine_until, anvil, done)
            with trio.fail_after(5):
                await sink.wait_confirmed(original)
            done.set()

        assert anvil.rpc("eth_getTransactionReceipt", original) is None
        (resent,) = sink.transactions_for(original)
        assert sink.mined_hash(original) == resent
        assert anvil.rpc("eth_getTransactionByHash", resent)["nonce"] == "0x1"
        assert [(p.batch, p.reference) for p in await sink.posted()] == [(batch, resent)]
        assert await post(sink, batch) == resent
        await sink.aclose()

    run(main)


def test_a_repost_after_the_nonce_was_taken_sends_the_batch_again(manual_anvil: Anvil) -> None:
    anvil = manual_anvil
    batch = make_batch(0)

    async def main() -> None:
        sink = make_sink(anvil)
        original = await post(sink, batch)
        steal_nonce(anvil, 0)
        anvil.mine()
        resent = await post(sink, batch)  # not on the L1, nonce gone: sent again
        assert resent != original
        assert await post(sink, batch) == resent  # and now pending: not again
        assert sink.transactions_for(original) == (resent,)
        anvil.mine()
        await sink.wait_confirmed(original)  # the old reference follows the batch
        assert [p.reference for p in await sink.posted()] == [resent]
        assert anvil.nonce(anvil.address) == 2
        await sink.aclose()

    run(main)


# ------------------------------------------------------------------ the L1 down


def test_a_paused_l1_is_unavailable_within_the_request_timeout(anvil: Anvil) -> None:
    async def main() -> None:
        sink = make_sink(anvil)
        await sink.wait_confirmed(await post(sink, make_batch(0)))
        anvil.pause()
        try:
            for call in (lambda: post(sink, make_batch(1)), sink.posted):
                started = trio.current_time()
                with pytest.raises(L1UnavailableError, match="did not answer"):
                    await call()
                assert trio.current_time() - started < REQUEST_TIMEOUT_S + 0.5
        finally:
            anvil.resume()
        reference = await post(sink, make_batch(1))
        await sink.wait_confirmed(reference)
        assert [p.batch.batch_number for p in await sink.posted()] == [0, 1]
        assert anvil.nonce(anvil.address) == 2
        await sink.aclose()

    run(main)


def test_an_l1_that_is_not_listening_is_unavailable(anvil: Anvil) -> None:
    url = anvil.url
    anvil.kill()

    async def main() -> None:
        sink = EthereumSink(url, anvil.private_key, INBOX, CHAIN, request_timeout_s=1.0)
        with pytest.raises(L1UnavailableError, match="cannot reach"):
            await post(sink, make_batch(0))
        with pytest.raises(L1UnavailableError, match="cannot reach"):
            await sink.posted()
        await sink.aclose()

    run(main)


# ------------------------------------------------------------------ restarts


def test_a_new_sink_finds_what_is_on_l1_and_does_not_repost(anvil: Anvil) -> None:
    batches = [make_batch(n) for n in range(3)]

    async def main() -> None:
        first = make_sink(anvil)
        references = [await post(first, batch) for batch in batches]
        for reference in references:
            await first.wait_confirmed(reference)
        await first.aclose()
        sent = anvil.nonce(anvil.address)
        assert sent == 3

        second = make_sink(anvil)  # a restarted poster: nothing in memory
        posted = await second.posted()
        assert [(p.batch, p.reference, p.confirmed) for p in posted] == [
            (batch, reference, True) for batch, reference in zip(batches, references, strict=True)
        ]
        for batch, reference in zip(batches, references, strict=True):
            assert await post(second, batch) == reference
            await second.wait_confirmed(reference)
        assert anvil.nonce(anvil.address, "pending") == sent
        await second.wait_confirmed(await post(second, make_batch(3)))
        assert anvil.nonce(anvil.address) == sent + 1

        reader = EthereumSink.reader(anvil.url, anvil.address, INBOX, CHAIN)
        assert [p.batch.batch_number for p in await reader.posted()] == [0, 1, 2, 3]
        with pytest.raises(L1Error, match="reader"):
            await post(reader, make_batch(4))
        await reader.aclose()
        await second.aclose()

    run(main)


def test_a_new_sink_adopts_our_transaction_pending_in_the_mempool(manual_anvil: Anvil) -> None:
    anvil = manual_anvil
    batch = make_batch(0)

    async def main() -> None:
        first = make_sink(anvil)
        reference = await post(first, batch)
        await first.aclose()  # the poster restarts before the transaction is mined

        second = make_sink(anvil, stuck_after_s=0.3)
        assert await second.posted() == []
        assert await post(second, batch) == reference
        assert anvil.nonce(anvil.address, "pending") == 1
        with pytest.raises(L1ConflictError, match="mempool"):
            await post(second, make_batch(0, variant=1))
        # adopted: the stuck transaction is bumped, then confirmed
        confirmed = trio.Event()

        async def wait() -> None:
            await second.wait_confirmed(reference)
            confirmed.set()

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                while len(second.transactions_for(reference)) < 2:
                    await trio.sleep(0.02)
                nursery.start_soon(mine_until, anvil, confirmed)
        assert anvil.nonce(anvil.address) == 1
        (posted,) = await second.posted()
        assert posted.batch == batch
        assert posted.reference == second.transactions_for(reference)[-1]
        await second.aclose()

    run(main)


def test_wait_confirmed_after_a_restart_accepts_a_reference_it_did_not_send(anvil: Anvil) -> None:
    async def main() -> None:
        first = make_sink(anvil)
        reference = await post(first, make_batch(0))
        await first.aclose()
        second = make_sink(anvil)
        await second.wait_confirmed(reference)
        with pytest.raises(L1Error, match="unknown"):
            await second.wait_confirmed("0x" + "ab" * 32)
        await second.aclose()

    run(main)
