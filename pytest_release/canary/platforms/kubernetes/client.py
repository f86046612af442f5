"""A small JSON client over the official ``kubernetes`` package.

The ``kubernetes`` package loads the kubeconfig (or the in-cluster service account) and
sends the requests; this module adds what the platform, the routers and the ledger need
on top: objects as plain dicts, the content type of every patch chosen explicitly (a real
API server rejects strategic merge patches on custom resources, so custom resources get
JSON merge patches), short timeouts, and errors that name the verb, the resource, the
object, the namespace and the identity, with what to do about them.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
from pytest_release.errors import PlatformError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON = dict[str, Any]

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Kind:
    """Where a resource lives in the API (group ``""`` is the core group)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``deployments.apps`` / ``pods``: how RBAC rules and kubectl name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


NAMESPACES = Kind("", "v1", "namespaces", "Namespace", namespaced=False)
PODS = Kind("", "v1", "pods", "Pod")
SERVICES = Kind("", "v1", "services", "Service")
CONFIGMAPS = Kind("", "v1", "configmaps", "ConfigMap")
SERVICE_ACCOUNTS = Kind("", "v1", "serviceaccounts", "ServiceAccount")
DEPLOYMENTS = Kind("apps", "v1", "deployments", "Deployment")
REPLICASETS = Kind("apps", "v1", "replicasets", "ReplicaSet")
ENDPOINT_SLICES = Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
LEASES = Kind("coordination.k8s.io", "v1", "leases", "Lease")
EVENTS = Kind("", "v1", "events", "Event")
CRDS = Kind(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


class KubeApiError(PlatformError):
    """A request to the API server failed; the message is meant for the user."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        verb: str = "",
        resource: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.verb = verb
        self.resource = resource
        self.reason = reason


class KubeUnreachable(KubeApiError):
    """The API server did not answer (stopped, unreachable, timed out)."""


def _default_kubeconfig() -> str | None:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    home = Path.home() / ".kube" / "config"
    return str(home) if home.is_file() else None


T = TypeVar("T")


def raising_as(error: Callable[[str], Exception], action: Callable[[], T]) -> T:
    """``action()``, a :class:`KubeApiError` raised as ``error`` of its message: a
    platform's or a router's errors are its own kind (PlatformError, RouterError)."""
    try:
        return action()
    except KubeApiError as exc:
        raise error(str(exc)) from None


class LazyApi:
    """The :class:`KubeApi` of a platform, router or ledger, connected on first use (one
    that is built but never asked needs no cluster); a failed connection is ``error``."""

    def __init__(
        self,
        connect: Callable[[], KubeApi],
        error: Callable[[str], Exception],
        api: KubeApi | None = None,
    ) -> None:
        self._connect = connect
        self._error = error
        self._api = api

    def get(self) -> KubeApi:
        if self._api is None:
            self._api = raising_as(self._error, self._connect)
        return self._api

    def close(self) -> None:
        """Close the connection if one was made; the next :meth:`get` connects again."""
        if self._api is not None:
            self._api.close()
            self._api = None


class KubeApi:
    """JSON requests to one API server as one identity."""

    def __init__(
        self, access: ClusterAccess, rootdir: Path | None = None, timeout: float = 15.0
    ) -> None:
        try:
            # Untyped in part: used through Any.
            k8s_client: Any = importlib.import_module("kubernetes.client")
            k8s_config: Any = importlib.import_module("kubernetes.config")
            dynamic: Any = importlib.import_module("kubernetes.dynamic")
        except ImportError:  # pragma: no cover - depends on the environment
            raise KubeApiError(
                "the Kubernetes platform needs the 'kubernetes' package: "
                "pip install 'pytest-release[kubernetes]'"
            ) from None
        self.timeout = timeout
        kubeconfig = access.kubeconfig
        if kubeconfig is not None and rootdir is not None and not Path(kubeconfig).is_absolute():
            kubeconfig = str(rootdir / kubeconfig)
        configuration = k8s_client.Configuration()
        try:
            if kubeconfig is None and access.context is None and _default_kubeconfig() is None:
                k8s_config.load_incluster_config(client_configuration=configuration)
                self.identity = "the in-cluster service account"
            else:
                path = kubeconfig or _default_kubeconfig()
                if path is not None and not Path(path).is_file():
                    raise KubeApiError(
                        f"kubeconfig {path} does not exist; set platform.kubeconfig (or "
                        "ledger.kubeconfig) to an existing file, or $KUBECONFIG"
                    )
                k8s_config.load_kube_config(
                    config_file=path,
                    context=access.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                _, active = k8s_config.list_kube_config_contexts(config_file=path)
                name = access.context or (active or {}).get("name", "?")
                self.identity = f"context '{name}' of {path}"
        except KubeApiError:
            raise
        except Exception as exc:  # the loaders raise ConfigException and friends
            raise KubeApiError(
                f"cannot load the Kubernetes client configuration "
                f"(kubeconfig {kubeconfig or _default_kubeconfig() or 'in-cluster'}, context "
                f"{access.context or '(current)'}): {exc}"
            ) from None
        configuration.retries = 1
        self.server = str(configuration.host)
        self._api_client = k8s_client.ApiClient(configuration)
        self._dynamic = dynamic.DynamicClient(self._api_client, discoverer=_NoDiscovery)

    def close(self) -> None:
        self._api_client.close()

    # -- requests --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        kind: Kind,
        namespace: str | None,
        name: str | None = None,
        *,
        body: Mapping[str, Any] | list[JSON] | None = None,
        subresource: str | None = None,
        content_type: str | None = None,
        query: Sequence[tuple[str, str]] = (),
    ) -> JSON:
        from kubernetes.client.exceptions import ApiException

        path = kind.path(namespace, name, subresource)
        verb = _VERBS.get(method, "get" if name else "list")
        try:
            response = self._dynamic.request(
                method.lower(),
                path,
                body=body if body is None or isinstance(body, list) else dict(body),
                content_type=content_type,
                query_params=list(query),
                _request_timeout=self.timeout,
                serialize=False,
            )
        except ApiException as exc:
            raise self._api_error(exc, verb, kind, namespace, name, subresource) from None
        except Exception as exc:
            # urllib3 connection errors, timeouts, TLS errors: the server did not answer.
            raise KubeUnreachable(
                f"the Kubernetes API server at {self.server} did not answer ({verb} "
                f"{_what(kind, namespace, name, subresource)}): {_cause(exc)}. Check that the "
                f"cluster is up and reachable from here ({self.identity})",
                verb=verb,
                resource=kind.resource,
                reason="unreachable",
            ) from None
        data = getattr(response, "data", b"")
        if not data:
            return {}
        try:
            decoded = json.loads(data)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}

    def get(self, kind: Kind, namespace: str | None, name: str) -> JSON | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", kind, namespace, name)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
    ) -> list[JSON]:
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        items = self.request("GET", kind, namespace, query=query).get("items") or []
        return [i for i in items if isinstance(i, dict)]

    def create(self, kind: Kind, namespace: str | None, body: Mapping[str, Any]) -> JSON:
        return self.request("POST", kind, namespace, body=body)

    def replace(
        self, kind: Kind, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> JSON:
        """PUT: fails with status 409 when ``metadata.resourceVersion`` is stale."""
        return self.request("PUT", kind, namespace, name, body=body)

    def merge_patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> JSON:
        """RFC 7386 JSON merge patch (works on every resource, custom ones included)."""
        return self.request(
            "PATCH",
            kind,
            namespace,
            name,
            body=patch,
            subresource=subresource,
            content_type=MERGE_PATCH,
        )

    def json_patch(
        self, kind: Kind, namespace: str | None, name: str, operations: Sequence[JSON]
    ) -> JSON:
        """RFC 6902 JSON patch (e.g. replace a whole pod template)."""
        return self.request(
            "PATCH",
            kind,
            namespace,
            name,
            body=[dict(op) for op in operations],
            content_type=JSON_PATCH,
        )

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        """Delete with foreground propagation; False when it did not exist."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        try:
            self.request("DELETE", kind, namespace, name, body=body)
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def serves(self, group_version: str, plural: str) -> bool:
        """Whether the server serves ``plural`` in ``group/version`` (discovery)."""
        group, _, version = group_version.rpartition("/")
        kind = Kind(group, version, "", "")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._dynamic.request(
                "get", path, _request_timeout=self.timeout, serialize=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._api_error(exc, "get", kind, None, None, None) from None
        except Exception as exc:
            raise KubeUnreachable(
                f"the Kubernetes API server at {self.server} did not answer (discovery of "
                f"{group_version}): {_cause(exc)}",
                reason="unreachable",
            ) from None
        try:
            resources = json.loads(getattr(response, "data", b"") or b"{}").get("resources", [])
        except ValueError:
            return False
        return any(r.get("name") == plural for r in resources if isinstance(r, dict))

    # -- errors ----------------------------------------------------------------------------
    def _api_error(
        self,
        exc: Exception,
        verb: str,
        kind: Kind,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
    ) -> KubeApiError:
        status = getattr(exc, "status", None)
        body = getattr(exc, "body", None)
        reason = ""
        detail = str(getattr(exc, "reason", "") or "")
        if body:
            try:
                parsed = json.loads(body)
                detail = str(parsed.get("message") or detail)
                reason = str(parsed.get("reason") or "")
            except (ValueError, AttributeError):
                detail = _short(str(body))
        what = _what(kind, namespace, name, subresource)
        resource = kind.resource + (f"/{subresource}" if subresource else "")
        if status == 403:
            scope = f" in namespace '{namespace}'" if namespace and kind.namespaced else ""
            message = (
                f"forbidden: {self.identity} may not {verb} {resource}{scope} "
                f"({what}) on {self.server}: {detail}. Grant the '{verb}' verb on "
                f"'{resource}' to this identity (RBAC Role and RoleBinding)"
            )
        elif status == 401:
            message = (
                f"unauthorized: the API server at {self.server} rejected the credentials of "
                f"{self.identity} ({verb} {what}): {detail}. Refresh the kubeconfig or token"
            )
        elif status == 404 and name is None:
            message = (
                f"the API server at {self.server} does not serve {resource} ({verb} {what}): "
                f"{detail}. Install the CustomResourceDefinition (see deploy/kubernetes/crds)"
            )
        else:
            message = f"{verb} {what} failed on {self.server}: HTTP {status} {reason}: {detail}"
        return KubeApiError(message, status=status, verb=verb, resource=resource, reason=reason)


def _what(kind: Kind, namespace: str | None, name: str | None, subresource: str | None) -> str:
    text = kind.resource
    if name:
        text += f" '{name}'"
    if subresource:
        text += f" ({subresource})"
    if namespace and kind.namespaced:
        text += f" in namespace '{namespace}'"
    return text


_CAUSES = (
    re.compile(r"\[Errno -?\d+\] ([^\"')]+)"),
    re.compile(r"'(Connection [^']+)'"),
    re.compile(r"((?:read|connect) timed out)", re.IGNORECASE),
    re.compile(r"(certificate verify failed[^\"')]*)"),
)


def _cause(exc: BaseException) -> str:
    """The root cause of a transport error (urllib3 wraps it in MaxRetryError)."""
    text = str(exc)
    for pattern in _CAUSES:
        if match := pattern.search(text):
            return match.group(1).strip().rstrip(".")
    return f"{type(exc).__name__}: {_short(text)}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _NoDiscovery:
    """Every path here is known: no discovery requests (and no cache file in /tmp)."""

    def __init__(self, client: Any, cache_file: Any) -> None:
        self.client = client


def conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = obj.get("status") or {}
    return {
        str(c.get("type")): c
        for c in status.get("conditions") or []
        if isinstance(c, Mapping) and c.get("type")
    }
