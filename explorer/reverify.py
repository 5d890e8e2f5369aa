"""Re-verification of the chain as the node serves it now: a range, or everything from
genesis, checked again block by block, as ``lianxin verify-chain`` checks the node's store.

For every height it checks what the indexer checks (:func:`explorer.block_check.check_block`:
header hash, parent link, transaction hashes, root and signatures, receipts and their root,
the ruling set's hash and the commit certificate against the validator set of that height),
that the block is the one the explorer indexed, and optionally re-executes every block from
genesis (:mod:`chain.execution`, with the block's system writes) to compare the state root
and the receipts. The first failing height and its reason make the report, so that its
verdict can be compared with ``verify-chain``'s (which also stops at the first bad height).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chain.errors import ChainError
from chain.execution import BlockContext, execute_block
from chain.genesis import Genesis, genesis_block
from chain.types import CommitCertificate, Header
from contracts.validators import block_system_writes
from explorer.block_check import (
    BlockRefused,
    SetChange,
    ValidatorTimeline,
    check_block,
    check_certificate,
)
from explorer.block_rows import build_rows, set_change_of
from explorer.decoding import ContractBook
from explorer.node_feed import FetchedBlock, NodeFeed, NodeUnavailable, chunks

Progress = Callable[[int, int], None]
"""Called with (height just verified, last height of the run)."""


@dataclass
class VerifyReport:
    """The outcome of one re-verification."""

    first: int
    """First height checked."""
    last: int
    """Last height of the run."""
    reexecute: bool
    """Whether blocks were re-executed."""
    ok: bool = True
    """Whether every height checked passed."""
    verified_to: int = -1
    """The last height that passed."""
    first_bad_height: int | None = None
    """The first height that failed."""
    reason: str | None = None
    """Why it failed."""
    notes: list[str] = field(default_factory=list)
    """What the run could not check, said plainly."""

    def fail(self, height: int, reason: str) -> VerifyReport:
        """Record the first failure."""
        self.ok, self.first_bad_height, self.reason = False, height, reason
        return self

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return asdict(self)


class _Execution:
    """Re-execution from genesis in memory: the state key-value space grows block by block."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        _, writes = genesis_block(genesis)
        self.state: dict[bytes, bytes] = dict(writes)

    def check(
        self, fetched: FetchedBlock, parent: Header, last_commit: CommitCertificate | None
    ) -> str | None:
        header = fetched.header
        context = BlockContext(
            chain_id=self.genesis.chain_id,
            height=header.height,
            timestamp_ms=header.timestamp_ms,
            proposer=header.proposer,
            gas_limit=self.genesis.block_gas_limit_at(header.height),
        )
        try:
            result = execute_block(
                self.state,
                parent.state_root,
                context,
                list(fetched.transactions),
                block_system_writes(self.genesis, last_commit),
            )
        except ChainError as exc:
            return f"re-execution failed: {exc}"
        self.state.update(result.writes)
        if result.state_root != header.state_root:
            return "state root differs from re-execution"
        if tuple(result.receipts) != fetched.receipts:
            return "stored receipts differ from re-execution"
        return None


def reverify(
    feed: NodeFeed,
    genesis: Genesis,
    *,
    first: int,
    last: int | None,
    reexecute: bool,
    indexed_hash: Callable[[int], str | None] = lambda _height: None,
    known_changes: Sequence[SetChange] = (),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    batch_blocks: int = 25,
) -> VerifyReport:
    """Check heights ``first``..``last`` (default: the node's head) as served by ``feed``.
    With ``reexecute`` the run starts at genesis whatever ``first`` is (state comes only
    from executing every block). ``indexed_hash`` gives the hash the explorer indexed at a
    height, if any, which the served block must equal."""
    head = feed.head_height()
    last = head if last is None else min(last, head)
    start = 0 if reexecute else max(0, first)
    report = VerifyReport(first=start, last=last, reexecute=reexecute)
    book = ContractBook.for_genesis(genesis)
    timeline = ValidatorTimeline(genesis.validator_set())
    if start > 0:
        for change in known_changes:
            timeline.add(change)
    proposal_keys: dict[int, tuple[bytes, int]] = {}
    execution = _Execution(genesis) if reexecute else None
    parent: Header | None = None
    previous_certificate: CommitCertificate | None = None
    if start > 0:
        report.notes.append(
            "the validator sets before the range come from the explorer's index; "
            "the parent of the range is checked by its certificate"
        )
    for heights in chunks(start, last, batch_blocks):
        try:
            fetched_blocks = feed.fetch_blocks(heights)
        except NodeUnavailable:
            fetched_blocks = _one_by_one(feed, heights, report)
        for fetched in fetched_blocks:
            if should_stop():
                report.notes.append("stopped before the end")
                return report
            if isinstance(fetched, VerifyReport):
                return fetched
            height = fetched.height
            validators = timeline.set_at(height)
            try:
                if parent is None and height > 0:
                    parent = _range_parent(feed, genesis, height, timeline)
                check_block(fetched, genesis=genesis, parent=parent, validators=validators)
            except (BlockRefused, NodeUnavailable) as exc:
                reason = exc.reason if isinstance(exc, BlockRefused) else str(exc)
                return report.fail(height, reason)
            indexed = indexed_hash(height)
            if indexed is not None and indexed != "0x" + fetched.header.hash.hex():
                return report.fail(height, "the node now serves another block than the one indexed")
            if execution is not None and parent is not None:
                last_commit = previous_certificate if height > 1 else None
                if last_commit is not None and last_commit.hash != fetched.header.last_commit_hash:
                    return report.fail(
                        height, "last commit does not match the header's last_commit_hash"
                    )
                problem = execution.check(fetched, parent, last_commit)
                if problem is not None:
                    return report.fail(height, problem)
            rows = build_rows(
                fetched, validators=validators, book=book, proposal_keys=proposal_keys
            )
            for change in rows.set_changes:
                timeline.add(set_change_of(change))
            parent, previous_certificate = fetched.header, fetched.certificate
            report.verified_to = height
            if progress is not None:
                progress(height, last)
    return report


def _one_by_one(feed: NodeFeed, heights: list[int], report: VerifyReport) -> list[Any]:
    """After a failed batch, the heights one at a time; the first the node cannot serve is a
    fault at that height (the node itself answers, so the block is what is broken)."""
    found: list[Any] = []
    for height in heights:
        try:
            found.extend(feed.fetch_blocks([height]))
        except NodeUnavailable as exc:
            feed.head_height()  # raises NodeUnavailable if the node itself is gone
            found.append(report.fail(height, f"the node cannot serve this block: {exc}"))
            break
    return found


def _range_parent(
    feed: NodeFeed, genesis: Genesis, height: int, timeline: ValidatorTimeline
) -> Header:
    """The block before a range, checked by its own certificate."""
    (parent,) = feed.fetch_blocks([height - 1])
    if height - 1 > 0:
        check_certificate(parent, genesis=genesis, validators=timeline.set_at(height - 1))
    elif parent.header != genesis_block(genesis)[0].header:
        raise BlockRefused(0, "genesis block differs from the genesis file")
    return parent.header
