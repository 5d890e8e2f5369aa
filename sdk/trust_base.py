"""What the sync and async trust clients share: the registry's address, the client's
credentials, the retry policy and offline bundle verification (:mod:`sdk.trust`)."""

from __future__ import annotations

from typing import TypeVar

import httpx

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey
from sdk.account import Sm2Account
from sdk.bundle import BundleVerdict, ProofBundle, verify_bundle
from sdk.license_calls import LicenseSigning
from sdk.streamed_upload import StreamedBody, StreamedExchange
from sdk.trust_core import (
    Answer,
    Call,
    Exchange,
)

_T = TypeVar("_T")


def _answer(response: httpx.Response) -> Answer:
    return Answer(response.status_code, response.reason_phrase, response.content)


class _TrustClientBase:
    """What the sync and async clients share: the registry's address, the client's
    credentials and the retry policy; each call's protocol lives in :mod:`sdk.trust_core`."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        private_key: PrivateKey | Sm2Account,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        chain_id: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._key = private_key.private_key if isinstance(private_key, Sm2Account) else private_key
        self.retries = retries
        self.backoff = backoff
        self.chain_id = chain_id
        """The chain id records are signed for; asked of the registry once if not given."""
        self._license_signing: LicenseSigning | None = None
        """What licenses are signed for (asked of the registry on the first license)."""

    def _exchange(self, call: Call[_T], streamed: StreamedBody | None = None) -> Exchange[_T]:
        if streamed is not None:
            return StreamedExchange(
                streamed,
                call,
                client_id=self.client_id,
                key=self._key,
                retries=self.retries,
                backoff=self.backoff,
            )
        return Exchange(
            call,
            client_id=self.client_id,
            key=self._key,
            retries=self.retries,
            backoff=self.backoff,
        )

    @staticmethod
    def verify_bundle(
        bundle: ProofBundle,
        validator_set: ValidatorSet,
        *,
        chain_id: int,
        expected_digest: bytes | None = None,
        notary: bytes | None = None,
    ) -> BundleVerdict:
        """Verify ``bundle`` offline against a trusted validator set (see
        :func:`sdk.bundle.verify_bundle`)."""
        return verify_bundle(
            bundle, validator_set, chain_id=chain_id, expected_digest=expected_digest, notary=notary
        )
