"""eth_call refuses a call the EVM cannot apply with -32602 (invalid params), not an internal
error: init code longer than EIP-3860's limit is refused before any of it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from node_harness import RpcFailure, make_chain, make_config, running_node

from node.rpc.errors import ErrorCode

INIT_CODE_LIMIT = 49_152
"""EIP-3860: the longest init code a creating transaction may carry."""


def test_init_code_above_the_limit_is_refused_as_invalid_params(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(make_chain(), make_config(tmp_path)) as (_, client):
            oversize = "0x" + "00" * (INIT_CODE_LIMIT + 1)
            for method in ("eth_call", "eth_estimateGas"):
                with pytest.raises(RpcFailure) as refused:
                    await client.call(method, {"data": oversize, "gas": hex(20_000_000)})
                assert refused.value.code == ErrorCode.INVALID_PARAMS, (method, refused.value)
                assert "EIP-3860" in str(refused.value.message)
            # At the limit the init code runs (49,152 STOPs: an empty contract).
            at_limit = "0x" + "00" * INIT_CODE_LIMIT
            assert await client.call("eth_call", {"data": at_limit, "gas": hex(20_000_000)}) == "0x"

    asyncio.run(main())
