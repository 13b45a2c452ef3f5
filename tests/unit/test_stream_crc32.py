"""The CRC-32 computed beside a stream equals zlib's over the whole stream, in order."""

from __future__ import annotations

import os
import random
import zlib

from pvc.storage.digest import StreamCrc32


def test_blocks_are_added_in_order_whatever_their_sizes():
    rng = random.Random(7)
    blocks = [os.urandom(rng.choice((0, 1, 17, 4096, 1 << 20))) for _ in range(60)]
    with StreamCrc32(depth=2) as crc:
        for index, block in enumerate(blocks):
            crc.update(block)
            if index == 30:  # asking midway does not end the stream
                assert crc.hexdigest() == f"{zlib.crc32(b''.join(blocks[:31])):08x}"
        assert crc.hexdigest() == f"{zlib.crc32(b''.join(blocks)):08x}"
    swapped = StreamCrc32()
    swapped.update(blocks[1])
    swapped.update(blocks[0])
    assert blocks[0] == blocks[1] or swapped.hexdigest() != f"{zlib.crc32(blocks[0] + blocks[1]):08x}"
    swapped.close()


def test_nothing_added_is_the_crc_of_nothing():
    with StreamCrc32() as crc:
        assert crc.hexdigest() == "00000000" == f"{zlib.crc32(b''):08x}"
