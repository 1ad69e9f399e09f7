"""The model file is hashed in blocks and read through the very file object that was checked."""

from __future__ import annotations

import hashlib
import io
import os

from mymodel import _same_file
from mymodel.store import HASH_BLOCK, sha256_of


def test_the_block_hash_equals_the_whole_file_hash_across_block_boundaries():
    for size in (0, 1, HASH_BLOCK - 1, HASH_BLOCK, HASH_BLOCK + 1, 3 * HASH_BLOCK + 17):
        data = os.urandom(size)
        assert sha256_of(io.BytesIO(data)) == hashlib.sha256(data).hexdigest()


def test_a_file_replaced_after_the_check_is_not_what_a_memory_map_reads(tmp_path):
    model, swapped = tmp_path / "model.joblib", tmp_path / "swapped"
    model.write_bytes(b"checked")
    swapped.write_bytes(b"swapped")
    with model.open("rb") as stream:
        os.replace(swapped, model)  # the path now names another file
        with open(_same_file(stream), "rb") as reopened:
            assert reopened.read() == b"checked"
