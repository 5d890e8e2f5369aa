"""While the dev producer runs, the interpreter hands the GIL between threads every
THREAD_SWITCH_INTERVAL_S (so the event loop answers while a block executes on the worker);
once the node stops, the interval it had before is back."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from node_harness import make_chain, make_config, running_node, send_and_wait, signed_tx

from node.producer import THREAD_SWITCH_INTERVAL_S


def test_the_switch_interval_is_short_while_blocks_are_produced(tmp_path: Path) -> None:
    chain = make_chain()
    before = sys.getswitchinterval()
    assert before > THREAD_SWITCH_INTERVAL_S  # CPython's default, 5 ms

    async def main() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            await asyncio.sleep(0)
            assert sys.getswitchinterval() == THREAD_SWITCH_INTERVAL_S
            tx = signed_tx(chain.sender, to=b"\x11" * 20, data=b"")
            receipt = await send_and_wait(client, tx)
            assert receipt["status"] == "0x1"
            assert sys.getswitchinterval() == THREAD_SWITCH_INTERVAL_S

    asyncio.run(main())
    assert sys.getswitchinterval() == before
