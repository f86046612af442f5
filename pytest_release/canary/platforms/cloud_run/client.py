"""The Cloud Run Admin API v2 through the official client library (``google-cloud-run``).

One :class:`CloudRunApi` per platform: ``ServicesClient`` and ``RevisionsClient`` over the
REST transport (``run.googleapis.com``, or ``platform.api_endpoint`` for an emulator),
Application Default Credentials (or none, for an emulator).  It adds what every step
needs: a service update that re-reads the service and retries when another writer
changed its ``etag`` meanwhile, long-running operations waited on within
``operation_timeout``, and errors turned into :class:`PlatformError` messages that say
what failed and how to fix it (a permission error names the roles needed).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_release.canary.platforms.cloud_run.config import CloudRunPlatformConfig
from pytest_release.errors import PlatformError

if TYPE_CHECKING:
    from google.cloud import run_v2

ROLES = (
    "roles/run.developer on the project or the service, and roles/iam.serviceAccountUser "
    "on the service's runtime service account {account} (needed to deploy revisions that "
    "run as it)"
)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def short_name(name: str) -> str:
    """``projects/p/locations/l/services/s/revisions/r`` -> ``r``."""
    return name.rsplit("/", 1)[-1]


class CloudRunApi:
    """The service of ``config`` and its revisions."""

    def __init__(self, config: CloudRunPlatformConfig) -> None:
        self.config = config
        self._services: Any = None
        self._revisions: Any = None
        self.account = "(the service's runtime service account)"

    # -- clients -------------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError

        kwargs: dict[str, Any] = {"transport": "rest"}
        if self.config.api_endpoint:
            kwargs["client_options"] = {"api_endpoint": self.config.api_endpoint}
        if self.config.credentials == "anonymous":
            kwargs["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
            return kwargs
        try:
            credentials, _ = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as exc:
            raise PlatformError(
                "no Google Cloud credentials found for the Cloud Run Admin API "
                f"({exc}): run 'gcloud auth application-default login', set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run where "
                "the metadata server provides them (Cloud Build, GKE, Compute Engine), or use "
                "workload identity federation in CI"
            ) from None
        kwargs["credentials"] = credentials
        return kwargs

    @property
    def services(self) -> run_v2.ServicesClient:
        if self._services is None:
            from google.cloud import run_v2

            self._services = run_v2.ServicesClient(**self._client_kwargs())
        return self._services  # type: ignore[no-any-return]

    @property
    def revisions(self) -> run_v2.RevisionsClient:
        if self._revisions is None:
            from google.cloud import run_v2

            self._revisions = run_v2.RevisionsClient(**self._client_kwargs())
        return self._revisions  # type: ignore[no-any-return]

    def close(self) -> None:
        for client in (self._services, self._revisions):
            if client is not None:
                client.transport.close()
        self._services = self._revisions = None

    # -- errors --------------------------------------------------------------------------
    def fail(self, what: str, exc: BaseException) -> NoReturn:
        """Raise a :class:`PlatformError` for ``exc`` raised while doing ``what``."""
        from google.api_core import exceptions as gexc

        where = f"Cloud Run service '{self.config.service}' in {self.config.location}"
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, gexc.Forbidden):
            raise PlatformError(
                f"{what}: permission denied on {where}: {message}. The identity running the "
                f"stages needs {ROLES.format(account=self.account)}"
            ) from None
        if isinstance(exc, gexc.Unauthorized):
            raise PlatformError(
                f"{what}: the Cloud Run Admin API did not accept the credentials ({message}): "
                "refresh them ('gcloud auth application-default login') or check "
                "GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
        if isinstance(exc, gexc.NotFound):
            raise PlatformError(
                f"{what}: not found on {where}: {message}. Check platform.project, "
                "platform.region and platform.service; the service must exist (deploy it "
                f"once with 'gcloud run deploy {self.config.service} --image=... "
                f"--region={self.config.region} --project={self.config.project}')"
            ) from None
        if isinstance(exc, concurrent.futures.TimeoutError):
            raise PlatformError(
                f"{what}: the long-running operation did not finish within "
                f"{self.config.operation_timeout:g}s (platform.operation_timeout); see the "
                "service's revisions and logs in the Cloud Console"
            ) from None
        if isinstance(exc, gexc.GoogleAPICallError):
            raise PlatformError(
                f"{what} on {where} failed: {type(exc).__name__} ({exc.code}): {message}"
            ) from None
        raise PlatformError(
            f"{what}: cannot reach the Cloud Run Admin API at "
            f"{self.config.api_endpoint or 'run.googleapis.com'}: {type(exc).__name__}: "
            f"{message}"
        ) from None

    def call(self, what: str, action: Callable[[], Any]) -> Any:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc
        from requests import RequestException

        try:
            return action()
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, RequestException, OSError) as exc:
            self.fail(what, exc)

    # -- reads ---------------------------------------------------------------------------
    def get_service(self) -> run_v2.Service:
        timeout = self.config.request_timeout
        service = self.call(
            "reading the service",
            lambda: self.services.get_service(name=self.config.service_name, timeout=timeout),
        )
        if service.template.service_account:
            self.account = f"'{service.template.service_account}'"
        return service  # type: ignore[no-any-return]

    def list_revisions(self) -> list[run_v2.Revision]:
        timeout = self.config.request_timeout

        def run() -> list[run_v2.Revision]:
            pages = self.revisions.list_revisions(parent=self.config.service_name, timeout=timeout)
            return list(pages)

        return self.call("listing the service's revisions", run)  # type: ignore[no-any-return]

    # -- writes --------------------------------------------------------------------------
    def wait(self, what: str, operation: Any) -> Any:
        """The result of a long-running operation; its error becomes a PlatformError."""
        from google.api_core.future.polling import DEFAULT_POLLING

        timeout = self.config.operation_timeout
        polling = DEFAULT_POLLING.with_delay(initial=0.1, maximum=2.0, multiplier=1.5)
        polling = polling.with_timeout(timeout)
        return self.call(
            what,
            lambda: operation.result(timeout=timeout, polling=polling),
        )

    def update_service(
        self, what: str, change: Callable[[run_v2.Service], run_v2.Service | None]
    ) -> run_v2.Service:
        """Read the service, let ``change`` edit a copy (None: nothing to change) and write
        it with the etag read; another writer's change in between makes the API refuse the
        etag, and the update is tried again from a fresh read, ``etag_attempts`` times."""
        from google.api_core import exceptions as gexc
        from google.cloud import run_v2

        conflicts: list[str] = []
        for _ in range(self.config.etag_attempts):
            current = self.get_service()
            wanted = change(run_v2.Service.deserialize(run_v2.Service.serialize(current)))
            if wanted is None:
                return current
            wanted.etag = current.etag
            request = run_v2.UpdateServiceRequest(service=wanted)
            try:
                operation = self.services.update_service(
                    request=request, timeout=self.config.request_timeout
                )
            except (gexc.Aborted, gexc.Conflict, gexc.PreconditionFailed) as exc:
                conflicts.append(exc.message or str(exc))
                continue
            except gexc.FailedPrecondition as exc:
                if "etag" not in (exc.message or "").lower():
                    self.fail(what, exc)
                conflicts.append(exc.message or str(exc))
                continue
            except (gexc.GoogleAPIError, OSError) as exc:
                self.fail(what, exc)
            return self.wait(what, operation)  # type: ignore[no-any-return]
        raise PlatformError(
            f"{what}: Cloud Run service '{self.config.service}' changed under every one of "
            f"{self.config.etag_attempts} attempts (etag conflict: another writer updates it "
            f"at the same time; last answer: {conflicts[-1]}). Stop the other deployment "
            "(another pipeline, gcloud, Terraform) and run the stage again, or raise "
            "platform.etag_attempts"
        )

    def delete_revision(self, revision: str) -> None:
        """Delete a revision (that serves no traffic and has no tag) and wait for it."""
        name = f"{self.config.service_name}/revisions/{revision}"
        timeout = self.config.request_timeout
        what = f"deleting revision '{revision}'"
        operation = self.call(
            what, lambda: self.revisions.delete_revision(name=name, timeout=timeout)
        )
        self.wait(what, operation)
