"""Genesis files: the shipped example loads; broken ones are clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sequencer.codec import encode
from sequencer.errors import DecodeError, InvalidGenesisError
from sequencer.genesis import dump_genesis, load_genesis, parse_genesis
from sequencer.ids import decode_batch, encode_batch
from sequencer.types import BatchCommitment

EXAMPLE = Path(__file__).parents[2] / "configs" / "genesis.example.json"


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def test_example_genesis_loads_and_round_trips() -> None:
    genesis = load_genesis(EXAMPLE)
    assert genesis.chain_id == "devnet-1"
    assert len(genesis.validators) == 4
    assert parse_genesis(dump_genesis(genesis)) == genesis


def test_consensus_parameters_default_when_absent() -> None:
    document = example()
    del document["consensus"]
    del document["initial_height"]
    genesis = parse_genesis(json.dumps(document))
    assert genesis.consensus.max_block_txs > 0
    assert genesis.initial_height == 1


def _with_validator(**change: Any) -> dict[str, Any]:
    document = example()
    document["validators"][1] |= change
    return document


BROKEN = [
    ("duplicate public key", _with_validator(public_key=example()["validators"][0]["public_key"])),
    ("duplicate name", _with_validator(name="node0")),
    ("zero power", _with_validator(power=0)),
    ("power too large", _with_validator(power=2**61)),
    ("no validators", example() | {"validators": []}),
    ("initial height 2", example() | {"initial_height": 2}),
    ("unknown key", example() | {"chian_id": "x"}),
    ("unknown consensus key", example() | {"consensus": {"timeout_propose": 1}}),
    ("block gas below one transaction", example() | {"consensus": {"max_block_gas": 999}}),
    ("empty chain id", example() | {"chain_id": ""}),
]


@pytest.mark.parametrize(("case", "document"), BROKEN, ids=[c for c, _ in BROKEN])
def test_broken_genesis_is_a_clear_error(case: str, document: dict[str, Any]) -> None:
    with pytest.raises(InvalidGenesisError):
        parse_genesis(json.dumps(document))


def test_error_names_the_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(example() | {"chian_id": "x"}))
    with pytest.raises(InvalidGenesisError, match=r"genesis\.json.*chian_id"):
        load_genesis(path)
    with pytest.raises(InvalidGenesisError, match="cannot read"):
        load_genesis(tmp_path / "absent.json")


def test_decode_batch_rejects_bad_encodings() -> None:
    batch = BatchCommitment("c", 3, 10, 20, b"\x01" * 32, b"\x02" * 32)
    assert decode_batch(encode_batch(batch)) == batch
    fields = ["seq/batch/v1", "c", 3, 10, 20, b"\x01" * 32, b"\x02" * 32]
    for bad in [
        ["seq/batch/v2", *fields[1:]],  # wrong tag
        [*fields[:3], 20, 10, *fields[5:]],  # last below first
        [*fields[:3], 0, 0, *fields[5:]],  # heights start at 1
        fields[:-1],
        [*fields, b""],
    ]:
        with pytest.raises(DecodeError):
            decode_batch(encode(bad))
