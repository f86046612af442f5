"""A Cloud Run Admin API v2 **emulator** (a fake: the real API cannot run here).

A REST server on 127.0.0.1 that answers the requests the ``google-cloud-run`` client
library sends over its REST transport, for the resources the cloud-run platform uses:

* ``services.get`` / ``services.patch`` (a long-running operation): a changed template
  creates a revision, ``traffic`` (percent, tags, LATEST or REVISION) is validated and,
  once the revision is ready, served; ``traffic_statuses`` and tag URLs report it;
* ``revisions.list`` / ``get`` / ``delete`` (a revision referenced by traffic refuses);
* ``operations.get``; ``etag`` conflicts (409 ABORTED), 404 and 403 (denied
  permissions), failed operations (a container that does not start, or injected).

Each revision is a real process (the fault service, knobs by image) behind its own URL
(the tag URL), and the service URL is a proxy that splits requests by the served
percentages (see :mod:`.emulator_backends`).  Messages copy the real API's wording.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import json_format, timestamp_pb2

from pytest_release.system.processes import free_port
from tests.cloud_run.emulator_backends import Backend, BackendFailed, SplitProxy, start_backend
from tests.support.http_server import QuietHandler, start_server, stop_server

LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
FAILED = run_v2.Condition.State.CONDITION_FAILED
_SERVICE = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/:]+)$")
_REVISIONS = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/]+)/revisions$")
_REVISION = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/]+)/revisions/([^/]+)$")
_OPERATION = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/operations/[^/]+)$")
HTTP_OF = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "PERMISSION_DENIED": 403}
HTTP_OF |= {"NOT_FOUND": 404, "ABORTED": 409, "ALREADY_EXISTS": 409}
CODE_OF = {"FAILED_PRECONDITION": 9, "INTERNAL": 13}


class ApiError(Exception):
    def __init__(self, status: str, message: str, http: int | None = None) -> None:
        super().__init__(message)
        self.http = http or HTTP_OF.get(status, 500)
        self.status = status
        self.message = message


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _ready(ok: bool, message: str = "") -> run_v2.Condition:
    return run_v2.Condition(
        type_="Ready",
        state=SUCCEEDED if ok else FAILED,
        message=message,
        last_transition_time=_now(),
    )


@dataclass
class RevisionState:
    revision: run_v2.Revision
    template: run_v2.RevisionTemplate
    backend: Backend | None = None

    @property
    def short(self) -> str:
        return str(self.revision.name).rsplit("/", 1)[-1]


@dataclass
class ServiceState:
    service: run_v2.Service
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    proxy: SplitProxy = field(default_factory=SplitProxy)


class CloudRunEmulator:
    """The emulated API and everything it runs; ``stop()`` ends it all."""

    def __init__(self, image_env: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.image_env = {k: dict(v) for k, v in (image_env or {}).items()}
        self.port = free_port()
        self.services: dict[str, ServiceState] = {}
        self.operations: dict[str, operations_pb2.Operation] = {}
        self.denied: set[str] = set()  # permissions answered 403, e.g. run.services.update
        self.conflicts = 0  # next N updates: another writer changes the service first
        self.etag_conflict = ("ABORTED", 409)  # how a stale etag is refused (or 412)
        self.operations_run = threading.Event()  # cleared: operations stay pending
        self.operations_run.set()
        self.fail_operations: list[str] = []  # next updates' operations fail with these
        self.updates = 0  # services.patch requests answered (any outcome)
        self.broken_images: set[str] = set()  # images whose container does not start
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- set-up --------------------------------------------------------------------------
    def create_service(self, project: str, region: str, name: str, image: str) -> str:
        """A service with one revision of ``image`` serving 100 % (``gcloud run deploy``)."""
        full = f"projects/{project}/locations/{region}/services/{name}"
        service = run_v2.Service(
            name=full,
            uid=str(uuid.uuid4()),
            generation=1,
            template=run_v2.RevisionTemplate(
                containers=[run_v2.Container(name="app", image=image)],
                service_account="app@" + project + ".iam.gserviceaccount.com",
            ),
            traffic=[run_v2.TrafficTarget(type_=LATEST, percent=100)],
            create_time=_now(),
        )
        state = ServiceState(service)
        state.proxy.start()
        service.uri = state.proxy.url
        service.urls = [state.proxy.url]
        with self.lock:
            self.services[full] = state
            revision = self._new_revision(state, service.template, f"{name}-00001-v1a")
            self._start(state, revision)
            self._serve(state)
            service.etag = self._etag(service)
        return full

    def start(self) -> None:
        emulator = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for the
            # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = self.path.split("?", 1)[0]
                try:
                    status, data = 200, emulator.handle(self.command, path, body)
                except ApiError as exc:
                    status = exc.http
                    data = {"error": {"code": status, "message": exc.message, "status": exc.status}}
                self.answer(status, json.dumps(data).encode(), "application/json")

            do_GET = do_PATCH = do_DELETE = do_POST = _handle

        self._server = start_server(Handler, self.port)

    def stop(self) -> None:
        if self._server is not None:
            stop_server(self._server)
        for state in self.services.values():
            state.proxy.stop()
            for revision in state.revisions.values():
                if revision.backend is not None:
                    revision.backend.stop()

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: str) -> dict[str, Any]:
        if (m := _SERVICE.match(path)) and method == "GET":
            self._check("run.services.get", m[1])
            with self.lock:
                return _json(self._service(m[1]).service)
        if (m := _SERVICE.match(path)) and method == "PATCH":
            self._check("run.services.update", m[1])
            return self._patch(m[1], run_v2.Service.from_json(body, ignore_unknown_fields=True))
        if (m := _REVISIONS.match(path)) and method == "GET":
            self._check("run.revisions.list", m[1])
            with self.lock:
                state = self._service(m[1])
                revisions = [r.revision for r in state.revisions.values()]
            return _json(run_v2.ListRevisionsResponse(revisions=revisions))
        if (m := _REVISION.match(path)) and method in ("GET", "DELETE"):
            name = f"{m[1]}/revisions/{m[2]}"
            self._check("run.revisions.get" if method == "GET" else "run.revisions.delete", name)
            if method == "GET":
                with self.lock:
                    return _json(self._revision(m[1], m[2]).revision)
            return self._delete(m[1], m[2])
        if (m := _OPERATION.match(path)) and method == "GET":
            with self.lock:
                if m[1] not in self.operations:
                    raise ApiError("NOT_FOUND", f"Operation '{m[1]}' not found.")
                return json.loads(json_format.MessageToJson(self.operations[m[1]]))  # type: ignore[no-any-return]
        raise ApiError("NOT_FOUND", f"The emulator does not serve {method} {path}")

    def _check(self, permission: str, resource: str) -> None:
        if permission in self.denied:
            raise ApiError(
                "PERMISSION_DENIED",
                f"Permission '{permission}' denied on resource '{resource}' (or resource may "
                "not exist).",
            )

    def _service(self, name: str) -> ServiceState:
        if name not in self.services:
            raise ApiError(
                "NOT_FOUND",
                f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' "
                f"in region '{name.split('/')[3]}' in project '{name.split('/')[1]}' "
                "does not exist.",
            )
        return self.services[name]

    def _revision(self, service: str, short: str) -> RevisionState:
        state = self._service(service)
        if short not in state.revisions:
            raise ApiError("NOT_FOUND", f"Revision '{short}' does not exist.")
        return state.revisions[short]

    # -- services.patch ------------------------------------------------------------------
    def _patch(self, name: str, wanted: run_v2.Service) -> dict[str, Any]:
        with self.lock:
            self.updates += 1
            state = self._service(name)
            service = state.service
            if self.conflicts > 0:  # another writer got there first
                self.conflicts -= 1
                service.generation += 1
                service.etag = self._etag(service)
            if wanted.etag and wanted.etag != service.etag:
                raise ApiError(
                    self.etag_conflict[0],
                    f"The service '{name.rsplit('/', 1)[-1]}' has been modified since the "
                    f"etag {wanted.etag} was read; read it again and retry.",
                    self.etag_conflict[1],
                )
            new_revision = self._template_changed(state, wanted.template)
            self._check_traffic(state, wanted, new_revision)
            service.generation += 1
            service.template = wanted.template
            service.traffic = wanted.traffic
            service.labels = wanted.labels
            service.annotations = wanted.annotations
            service.reconciling = True
            service.update_time = _now()
            service.etag = self._etag(service)
            revision = None
            if new_revision is not None:
                revision = self._new_revision(state, wanted.template, new_revision)
            operation = self._operation(name, service)
            failure = self.fail_operations.pop(0) if self.fail_operations else None
        threading.Thread(
            target=self._reconcile, args=(state, revision, operation, failure), daemon=True
        ).start()
        return json.loads(json_format.MessageToJson(operation))  # type: ignore[no-any-return]

    def _template_changed(
        self, state: ServiceState, template: run_v2.RevisionTemplate
    ) -> str | None:
        """The name of the revision the new template creates, or None (unchanged)."""

        def key(t: run_v2.RevisionTemplate) -> bytes:
            copy = run_v2.RevisionTemplate.deserialize(run_v2.RevisionTemplate.serialize(t))
            copy.revision = ""
            return run_v2.RevisionTemplate.serialize(copy)

        current = state.service.template
        if template.revision == current.revision and key(template) == key(current):
            return None
        if template.revision and template.revision in state.revisions:
            if key(template) != key(state.revisions[template.revision].template):
                raise ApiError(
                    "ALREADY_EXISTS",
                    f"Revision '{template.revision}' already exists "
                    "with another template: give the new revision another name.",
                )
            return None
        if not template.revision and key(template) == key(state.service.template):
            return None
        service = state.service.name.rsplit("/", 1)[-1]
        if template.revision and not template.revision.startswith(f"{service}-"):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"template.revision '{template.revision}' must "
                f"start with the service name followed by a dash: '{service}-'.",
            )
        return (
            template.revision
            or f"{service}-{state.service.generation + 1:05d}-{uuid.uuid4().hex[:3]}"
        )

    def _check_traffic(self, state: ServiceState, wanted: run_v2.Service, new: str | None) -> None:
        total, tags = 0, set()
        for target in wanted.traffic:
            total += target.percent
            if (
                target.type_ == REVISION
                and target.revision not in state.revisions
                and target.revision != new
            ):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Revision '{target.revision}' referenced in traffic does not exist.",
                )
            if target.tag:
                if target.tag in tags:
                    raise ApiError(
                        "INVALID_ARGUMENT", f"Tag '{target.tag}' is used more than once."
                    )
                tags.add(target.tag)
        if total != 100:
            raise ApiError(
                "INVALID_ARGUMENT", f"Traffic percentages must add up to 100, got {total}."
            )

    def _operation(self, name: str, metadata: run_v2.Service) -> operations_pb2.Operation:
        location = name.split("/services/")[0]
        operation = operations_pb2.Operation(name=f"{location}/operations/{uuid.uuid4()}")
        operation.metadata.Pack(run_v2.Service.pb(metadata))
        self.operations[operation.name] = operation
        return operation

    def _reconcile(
        self,
        state: ServiceState,
        revision: RevisionState | None,
        operation: operations_pb2.Operation,
        failure: str | None,
    ) -> None:
        self.operations_run.wait()
        error = failure
        if revision is not None and error is None:
            error = self._start(state, revision)
        with self.lock:
            service = state.service
            if error is None:
                self._serve(state)
                service.terminal_condition = _ready(True)
                service.observed_generation = service.generation
            else:
                service.terminal_condition = _ready(False, error)
            service.reconciling = False
            service.etag = self._etag(service)
            if error is None:
                operation.response.Pack(run_v2.Service.pb(service))
            else:
                operation.error.code = CODE_OF["FAILED_PRECONDITION"]
                operation.error.message = error
            operation.done = True

    # -- revisions -----------------------------------------------------------------------
    def _new_revision(
        self, state: ServiceState, template: run_v2.RevisionTemplate, short: str
    ) -> RevisionState:
        service = state.service
        revision = run_v2.Revision(
            name=f"{service.name}/revisions/{short}",
            uid=str(uuid.uuid4()),
            generation=1,
            service=service.name,
            containers=template.containers,
            scaling=template.scaling,
            service_account=template.service_account,
            labels=template.labels,
            annotations=template.annotations,
            create_time=_now(),
            reconciling=True,
        )
        revision_state = RevisionState(revision, template)
        state.revisions[short] = revision_state
        service.latest_created_revision = revision.name
        return revision_state

    def _start(self, state: ServiceState, revision: RevisionState) -> str | None:
        """Run the revision's container; the error message when it does not start."""
        image = revision.revision.containers[0].image
        try:
            backend = start_backend(
                image, self.image_env.get(image, {}), broken=image in self.broken_images
            )
        except BackendFailed as exc:
            message = f"Revision '{revision.short}' is not ready and cannot serve traffic. {exc}"
            with self.lock:
                revision.revision.conditions = [_ready(False, message)]
                revision.revision.reconciling = False
            return message
        with self.lock:
            revision.backend = backend
            revision.revision.conditions = [_ready(True)]
            revision.revision.reconciling = False
            revision.revision.observed_generation = 1
            state.service.latest_ready_revision = revision.revision.name
        return None

    def _serve(self, state: ServiceState) -> None:
        """Apply the service's traffic: statuses, tag URLs and the proxy's split."""
        service = state.service
        latest = str(service.latest_ready_revision).rsplit("/", 1)[-1]
        statuses, split = [], []
        for target in service.traffic:
            short = latest if target.type_ == LATEST else target.revision
            backend = state.revisions[short].backend if short in state.revisions else None
            url = backend.url if backend is not None else ""
            statuses.append(
                run_v2.TrafficTargetStatus(
                    type_=target.type_,
                    revision=target.revision,
                    percent=target.percent,
                    tag=target.tag,
                    uri=url if target.tag else "",
                )
            )
            split.append((short, target.percent, url))
        service.traffic_statuses = statuses
        state.proxy.set_split(split)

    def _delete(self, service_name: str, short: str) -> dict[str, Any]:
        with self.lock:
            state = self._service(service_name)
            revision = self._revision(service_name, short)
            latest = str(state.service.latest_ready_revision).rsplit("/", 1)[-1]
            for target in list(state.service.traffic) + list(state.service.traffic_statuses):
                used = target.revision or (latest if target.type_ == LATEST else "")
                if used == short:
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f"Revision '{short}' cannot be deleted "
                        "because it is serving traffic or is referenced by a tag.",
                    )
            del state.revisions[short]
            operation = self._operation(service_name, state.service)
            operation.response.Pack(run_v2.Revision.pb(revision.revision))
            operation.done = True
        if revision.backend is not None:
            revision.backend.stop()
        return json.loads(json_format.MessageToJson(operation))  # type: ignore[no-any-return]

    @staticmethod
    def _etag(service: run_v2.Service) -> str:
        return f'"{service.generation}-{time.monotonic_ns()}"'

    # -- what tests read -----------------------------------------------------------------
    def state(self, name: str) -> ServiceState:
        return self.services[name]

    def backend_url(self, name: str, short: str) -> str:
        backend = self.services[name].revisions[short].backend
        assert backend is not None, f"revision {short} has no running container"
        return backend.url


def _json(message: Any) -> dict[str, Any]:
    return json.loads(type(message).to_json(message))  # type: ignore[no-any-return]
