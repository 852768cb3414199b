"""A thin layer over kmock.KubernetesEmulator (kmock 0.8) that fills in what a real API server does.

Copied from ../shared/recipes/kubernetes-offline/k8s_emulator.py (a test utility; kmock is pinned
because this subclass uses its internals).
"""

import datetime
import itertools
import uuid
from typing import Any

import jsonpatch
import kmock

_RV = itertools.count(1)  # one global, monotonic resourceVersion sequence
_last_rv = 0


class Emulator(kmock.KubernetesEmulator):
    """kmock stores bodies verbatim; add the server-side metadata and watch semantics kopf needs."""

    async def _handle(self, request: kmock.Request):
        global _last_rv
        data = request.data
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            _last_rv = next(_RV)
        if request.action == kmock.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if (
                "name" not in meta and "generateName" in meta
            ):  # kopf.event()/info() use generateName
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if request.namespace:
                meta.setdefault(
                    "namespace", request.namespace
                )  # kopf needs body.metadata.namespace
            meta.setdefault("uid", str(uuid.uuid4()))  # kopf.adopt() needs the owner's uid
            meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).isoformat())
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = str(
                _last_rv
            )  # kopf's finalizer JSON-patches `test` this field
        elif request.action == kmock.action.UPDATE and isinstance(data, list):  # JSON-patch
            data.append({"op": "add", "path": "/metadata/resourceVersion", "value": str(_last_rv)})
        elif request.action == kmock.action.UPDATE and isinstance(data, dict):  # merge-patch
            data.setdefault("metadata", {})["resourceVersion"] = str(_last_rv)
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchException as e:  # e.g. a failed `test` op: a real server says 422
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(e)) from None

    async def _serve_list(self, request: kmock.Request):
        result = await super()._serve_list(request)
        result["metadata"]["resourceVersion"] = str(_last_rv)  # kmock 0.8 says '...'
        res, kind = (
            request.resource,
            self.resources[request.resource].kind,
        )  # kubectl get needs these
        result["apiVersion"] = f"{res.group}/{res.version}".lstrip("/")
        result["kind"] = f"{kind or res.plural.capitalize()}List"
        return result

    async def _serve_watch(self, request: kmock.Request):
        # kmock 0.8 (1) replays ALL objects as ADDED even for ?resourceVersion=N (kopf then sees
        # stale duplicates of what it has just listed) and (2) subscribes to its event bus only
        # AFTER the replay, so changes made meanwhile are lost. Fix both: replay only rv > N;
        # subscribe under the lock.
        since = request.params.get("resourceVersion", "")
        since_rv = int(since) if since.isdigit() else 0
        yield b""
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            objs = [
                o.raw
                for o in self._KubernetesEmulator__get_objs(request, strict=False)
                if not o.deleted
            ]
            events = [
                {"type": "ADDED", "object": o}
                for o in objs
                if int(o.get("metadata", {}).get("resourceVersion") or 0) > since_rv
            ]
        try:
            for event in events:
                yield event
            async for event in bus.stream(since=mark):
                meta = event.get("object", {}).get("metadata", {})
                if self._KubernetesEmulator__check(
                    request, request.resource, meta.get("namespace"), meta.get("name"), strict=False
                ):
                    yield event
        finally:
            await bus.unmark(mark)

    def get_obj(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The current stored body, or None if absent/deleted. resource: e.g. 'v1/configmaps'."""
        try:
            obj = self.objects[resource, namespace, name]
        except KeyError:
            return None
        return None if obj.deleted else obj.raw


def declare_crd(k8s: kmock.KubernetesEmulator, crd: dict[str, Any]) -> list[str]:
    """Make the CRD's resources discoverable (kopf scans /apis/<group>/<version>)."""
    spec, names = crd["spec"], crd["spec"]["names"]
    keys = []
    for version in spec["versions"]:
        key = f"{spec['group']}/{version['name']}/{names['plural']}"
        k8s.resources[key] = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names.get("singular", names["kind"].lower()),
            namespaced=spec["scope"] == "Namespaced",
            shortnames=names.get("shortNames", []),
            categories=names.get("categories", []),
            subresources=version.get("subresources", {}).keys(),
            verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
        )
        keys.append(key)
    return keys
