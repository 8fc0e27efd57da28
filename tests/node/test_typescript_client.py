"""The TypeScript client (`clients/typescript`), run by Node's own test runner.

Two runs: the client's unit tests (the specification's vectors, the light
client's checks against lies, keys, parsers, the HTTP client against fake
nodes) with cases drawn here by the node's own encoders, so the two
implementations are compared byte for byte; and its devnet tests against a
live 4-node devnet of real processes, through a lying proxy as well.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing

from sequencer.codec import encode, to_builtins
from sequencer.crypto import PrivateKey, sign_transaction, tx_signing_bytes
from sequencer.ids import block_id, commit_id, tx_id
from sequencer.limits import U64_MAX
from sequencer.merkle import merkle_root
from sequencer.types import BlockHeader, CommitCertificate, NamespaceEntry
from tests.node.cluster import running
from tests.typescript import CLIENT, require_client, run_node_tests

# Each integer and length at the edges of its msgpack width.
_INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**63, U64_MAX]
_LENGTHS = [0, 1, 31, 32, 255, 256, 65535, 65536]


def _u64(rng: random.Random) -> int:
    return rng.choice(_INTS) if rng.random() < 0.7 else rng.randrange(U64_MAX + 1)


def _bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def cross_cases(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    txs, headers, certificates, entries, merkle, invalid = [], [], [], [], [], []
    for i in range(60):
        key = PrivateKey(_bytes(rng, 32))
        chain = rng.choice(["c", "devnet-1", "x" * 31, "y" * 32, "z" * 64, "é-chain", "链"])
        payload = _bytes(rng, _LENGTHS[i % len(_LENGTHS)] if i < 24 else rng.randrange(300))
        tx = sign_transaction(
            key,
            chain_id=chain,
            namespace=_u64(rng),
            nonce=_u64(rng),
            gas_price=_u64(rng),
            payload=payload,
        )
        signing = tx_signing_bytes(
            tx.chain_id, tx.namespace, tx.sender, tx.nonce, tx.gas_price, tx.payload
        )
        txs.append(
            {
                "json": to_builtins(tx),
                "encoding": encode(tx).hex(),
                "signing_bytes": signing.hex(),
                "tx_id": tx_id(tx).hex(),
            }
        )
    for _ in range(40):
        header = BlockHeader(
            chain_id=rng.choice(["c", "devnet-1", "w" * 64]),
            height=max(1, _u64(rng)),
            round=_u64(rng),
            timestamp_ms=_u64(rng),
            parent_id=_bytes(rng, 32),
            tx_root=_bytes(rng, 32),
            namespace_root=_bytes(rng, 32),
            state_root=_bytes(rng, 32),
            proposer=rng.choice([0, 1, 127, 128, 65535, 65536, 2**32 - 1]),
            last_commit_id=_bytes(rng, 32),
        )
        headers.append(
            {
                "json": to_builtins(header),
                "encoding": encode(header).hex(),
                "block_id": block_id(header).hex(),
            }
        )
        signers = sorted(rng.sample(range(1024), rng.choice([0, 1, 3, 15, 16, 17, 100])))
        certificate = CommitCertificate(
            height=header.height,
            round=header.round,
            block_id=_bytes(rng, 32),
            signatures=[(index, _bytes(rng, 64)) for index in signers],
        )
        certificates.append(
            {
                "json": to_builtins(certificate),
                "encoding": encode(certificate).hex(),
                "commit_id": commit_id(certificate).hex(),
            }
        )
        entry = NamespaceEntry(
            namespace=_u64(rng),
            count=rng.choice([1, 127, 128, 255, 256, 65535, 65536]),
            ns_tx_root=_bytes(rng, 32),
        )
        entries.append({"json": to_builtins(entry), "encoding": encode(entry).hex()})
    for n in [*range(20), 31, 32, 33, 63, 64, 65, 100, 257]:
        items = [_bytes(rng, rng.choice([0, 1, 32, 40])) for _ in range(n)]
        merkle.append({"items": [item.hex() for item in items], "root": merkle_root(items).hex()})
    honest = txs[0]["json"]
    for why, change in [
        ("nonce above 2^64-1", {"nonce": U64_MAX + 1}),
        ("negative namespace", {"namespace": -1}),
        ("fractional gas price", {"gas_price": 1.5}),
        ("boolean namespace", {"namespace": True}),
        ("nonce as a string", {"nonce": "1"}),
        ("31-byte sender", {"sender": "00" * 31}),
        ("63-byte signature", {"signature": "00" * 63}),
        ("odd hex", {"payload": "abc"}),
        ("empty chain id", {"chain_id": ""}),
        ("65-character chain id", {"chain_id": "c" * 65}),
        ("unknown field", {"memo": "hi"}),
    ]:
        invalid.append({"why": why, "json": {**honest, **change}})
    invalid.append(
        {"why": "missing signature", "json": {k: v for k, v in honest.items() if k != "signature"}}
    )
    return {
        "signatures": signature_cases(rng),
        "seed": seed,
        "txs": txs,
        "headers": headers,
        "certificates": certificates,
        "entries": entries,
        "merkle": merkle,
        "invalid_txs": invalid,
    }


# A point of order 8: added to R, it leaves a signature valid under the
# cofactored equation and invalid under the cofactorless one the nodes use.
_TORSION = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
_L = 2**252 + 27742317777372353535851937790883648493


def _scalar(n: int) -> bytes:
    return (n % _L).to_bytes(32, "little")


def signature_cases(rng: random.Random) -> list[dict[str, Any]]:
    """Honest, torsioned, non-canonical and tampered signatures, each with the
    verdict of the nodes' libsodium."""
    cases = []
    for i in range(24):
        seed = _bytes(rng, 32)
        digest = hashlib.sha512(seed).digest()
        a = bytearray(digest[:32])
        a[0] &= 248
        a[31] &= 127
        a[31] |= 64
        secret = int.from_bytes(a, "little")
        public = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(_scalar(secret))
        message = _bytes(rng, rng.choice([0, 1, 32, 100]))
        r = rng.randrange(1, _L)
        big_r = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(_scalar(r))
        kind = ("honest", "torsion", "s_plus_l", "flipped")[i % 4]
        if kind == "torsion":
            big_r = nacl.bindings.crypto_core_ed25519_add(big_r, _TORSION)
        k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % _L
        s = (r + k * secret) % _L
        signature = big_r + (s + _L if kind == "s_plus_l" else s).to_bytes(32, "little")
        if kind == "flipped":
            signature = signature[:5] + bytes([signature[5] ^ 1]) + signature[6:]
        try:
            nacl.signing.VerifyKey(public).verify(message, signature)
            valid = True
        except nacl.exceptions.BadSignatureError:
            valid = False
        assert valid == (kind == "honest"), kind
        cases.append(
            {
                "kind": kind,
                "public_key": public.hex(),
                "message": message.hex(),
                "signature": signature.hex(),
                "valid": valid,
            }
        )
    return cases


def _write_json(path: Path, value: Any) -> None:
    # Integers above 2^53 stay exact: json writes Python ints as they are.
    path.write_text(json.dumps(value))


def test_the_client_unit_tests_pass_with_the_node_encoders_cases(tmp_path: Path) -> None:
    node = require_client()
    seed = random.SystemRandom().randrange(2**32)
    vectors = tmp_path / "cross.json"
    _write_json(vectors, cross_cases(seed))
    files = [
        "dist/test/vectors.unit.test.js",
        "dist/test/light.unit.test.js",
        "dist/test/client.unit.test.js",
        "dist/test/cross.unit.test.js",
        "dist/test/fuzz.unit.test.js",
        "dist/test/follow.unit.test.js",
    ]
    # Fresh seeds each run, printed to replay: SEQ_FUZZ_SEED=... npm test.
    fuzz_seed = random.SystemRandom().randrange(1, 2**32)
    env = {
        "SEQ_CROSS_VECTORS": str(vectors),
        "SEQ_PYTHON": sys.executable,
        "SEQ_FUZZ_SEED": str(fuzz_seed),
    }
    result = run_node_tests(node, files, env)
    print(f"cross-language cases drawn with seed {seed}, mutations with SEQ_FUZZ_SEED={fuzz_seed}")
    result.assert_all_passed(at_least=105)


def _quickstart(node: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The README's example, run as a user runs it, on the devnet at `home`."""
    argv = [node, "dist/examples/quickstart.js", str(home)]
    return subprocess.run(argv, cwd=CLIENT, capture_output=True, text=True, timeout=120)


def test_the_client_against_a_live_devnet(tmp_path: Path) -> None:
    node = require_client()
    root = tmp_path / "devnet"
    with running(root) as cluster:
        cluster.lift_rate_limit()
        env = {
            "SEQ_RPC": cluster.url(0),
            "SEQ_RPC_2": cluster.url(1),
            "SEQ_HOME": str(root),
            "SEQ_GENESIS": str(cluster.home(0) / "genesis.json"),
        }
        result = run_node_tests(node, ["dist/test/devnet.test.js"], env, timeout_s=240)
        result.assert_all_passed(at_least=11)
        # The README's example, as a user runs it: a devnet's home, node 0's URL from genesis.
        example = _quickstart(node, root)
        assert example.returncode == 0, example.stdout + example.stderr
        lines = example.stdout.splitlines()
        assert [line.split()[0] for line in lines] == [
            "sent",
            "committed",
            "proven",
            "namespace",
        ], lines
        assert "1 transaction(s), all of them, proven" in lines[3]


def test_the_example_says_in_one_line_what_is_missing(tmp_path: Path) -> None:
    node = require_client()
    example = _quickstart(node, tmp_path)
    assert example.returncode == 1
    assert example.stderr.startswith("error: "), example.stderr
    assert example.stderr.count("\n") == 1, example.stderr
    assert "genesis.json" in example.stderr
