"""Who may read the operator's HTTP API: the :class:`controller.http.security.Authorizer`
the operator lends the API, backed by the API server.

A bearer token is checked with a TokenReview (is it a valid token, and whose?), then
its user with a SubjectAccessReview: may they ``list`` ``meshworkloads.meshplane.io``
cluster-wide? That is the right to read every workload the API shows, so the API shows
nothing RBAC would not. Decisions (and invalid tokens) are cached for ``cache_s``
seconds, keyed by the SHA-256 of the token (the token itself is never kept), so a
dashboard polling every second costs two reviews per user per 10 s. The operator's
ServiceAccount needs ``create`` on ``tokenreviews.authentication.k8s.io`` and
``subjectaccessreviews.authorization.k8s.io``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from controller.api.resources import GROUP, KINDS
from controller.http.security import Decision, Unauthenticated

VERB = "list"
RESOURCE = KINDS["MeshWorkload"].plural
CACHE_S = 10.0
MAX_CACHED = 4096  # distinct tokens; past it, expired entries go, then everything


class ReviewAuthorizer:
    """See the module docstring. ``client`` is a ``kubernetes.client.ApiClient``."""

    def __init__(self, client: Any, cache_s: float = CACHE_S, request_timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._authn = kubernetes.client.AuthenticationV1Api(client)
        self._authz = kubernetes.client.AuthorizationV1Api(client)
        self._cache_s = cache_s
        self._timeout = request_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        # sha256(token) -> (expiry, decision, or the reason the token is not valid)
        self._cache: dict[str, tuple[float, Decision | str]] = {}

    def authorize(self, token: str) -> Decision:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return _answer(hit[1])
        result = self._review(token)  # an API server error propagates: nothing is cached
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[key] = (now + self._cache_s, result)
        return _answer(result)

    def _review(self, token: str) -> Decision | str:
        client = kubernetes.client
        review = self._authn.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)), _request_timeout=self._timeout
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return (status.error if status is not None and status.error else "") or "not authenticated"
        user = status.user
        access = self._authz.create_subject_access_review(
            client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                user=user.username, groups=user.groups, uid=user.uid, extra=user.extra,
                resource_attributes=client.V1ResourceAttributes(verb=VERB, group=GROUP, resource=RESOURCE),
            )),
            _request_timeout=self._timeout,
        )
        allowed = bool(access.status is not None and access.status.allowed)
        reason = (access.status.reason if access.status is not None else "") or ""
        return Decision(allowed=allowed, user=user.username or "", reason=reason or ("" if allowed else "no RBAC rule allows it"))


def _answer(result: Decision | str) -> Decision:
    if isinstance(result, str):
        raise Unauthenticated(result)
    return result
