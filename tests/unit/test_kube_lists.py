"""The Kubernetes adapter's cluster-wide lists (`Kube.list_all`, what the detector reads every
cycle): pages in order, the next page asked for while the caller works on the one it has (never
more than one ahead), an error when the page that failed is asked for, and the answers decoded
(orjson, or json where orjson refuses a document)."""
from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sre_operator.adapters.kube import LAST_APPLIED, Kube, _data
from sre_operator.domain.ports import ClusterError, Obj


class Answer:
    """An API answer as the client hands it back with `_preload_content=False`."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def pod(name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "shop", "annotations": {LAST_APPLIED: "{}"},
                         "managedFields": [{"manager": "kwok", "operation": "Update", "time": "2026-01-01T00:00:00Z",
                                            "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]}}


class Pages:
    """A cluster-wide list call answering `pages` one at a time (`continue`: the next page's index),
    noting each call; `fail`: page index → the status its call fails with."""

    def __init__(self, pages: list[list[Obj]], fail: dict[int, int] | None = None) -> None:
        self.pages, self.fail = pages, fail or {}
        self.calls: list[dict[str, Any]] = []
        self.asked = [threading.Event() for _ in pages]

    def __call__(self, *_: Any, **kwargs: Any) -> Answer:
        self.calls.append(kwargs)
        i = int(kwargs.get("_continue") or 0)
        self.asked[i].set()
        if i in self.fail:
            raise ApiException(status=self.fail[i], reason="Expired")
        meta = {"resourceVersion": "9", **({"continue": str(i + 1)} if i + 1 < len(self.pages) else {})}
        return Answer(json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": meta,
                                  "items": self.pages[i]}).encode())


def kube_with(pages: Pages) -> Kube:
    kube = Kube(client.ApiClient(client.Configuration()))
    kube.all_namespaces["Pod"] = pages
    return kube


PAGES = [[pod("a"), pod("b")], [pod("c"), pod("d")], [pod("e")]]


def test_the_next_page_is_read_while_the_caller_works_on_the_one_it_has() -> None:
    pages = Pages(PAGES)
    reading = kube_with(pages).list_all("Pod", {"app.kubernetes.io/part-of": "shop"})
    first = next(reading)
    assert first["metadata"]["name"] == "a"
    assert pages.asked[1].wait(5)  # asked for while "b" is still to come
    assert not pages.asked[2].is_set()  # one page ahead, no more
    rest = list(reading)
    assert [o["metadata"]["name"] for o in [first, *rest]] == ["a", "b", "c", "d", "e"]
    assert [c.get("_continue") for c in pages.calls] == [None, "1", "2"]
    assert all(c["label_selector"] == "app.kubernetes.io/part-of=shop" and c["_preload_content"] is False
               for c in pages.calls)
    # As the port hands them out: the kind set, the field sets and the last-applied copy left out.
    assert rest[-1]["kind"] == "Pod" and rest[-1]["metadata"]["annotations"] == {}
    assert rest[-1]["metadata"]["managedFields"] == [{"manager": "kwok", "operation": "Update",
                                                      "time": "2026-01-01T00:00:00Z"}]


def test_a_page_that_fails_fails_when_it_is_asked_for() -> None:
    with pytest.raises(ClusterError) as refused:
        next(kube_with(Pages(PAGES, fail={0: 403})).list_all("Pod"))
    assert refused.value.status == 403
    reading = kube_with(Pages(PAGES, fail={1: 410})).list_all("Pod")
    assert [next(reading)["metadata"]["name"], next(reading)["metadata"]["name"]] == ["a", "b"]
    with pytest.raises(ClusterError) as expired:
        next(reading)
    assert expired.value.status == 410


def test_a_reading_left_early_asks_for_nothing_more() -> None:
    pages = Pages(PAGES)
    reading = kube_with(pages).list_all("Pod")
    next(reading)
    reading.close()
    assert pages.asked[1].wait(5)
    assert [c.get("_continue") for c in pages.calls] == [None, "1"]


def test_incidents_are_read_as_bytes_and_decoded_here_too() -> None:
    pages = Pages([[{"metadata": {"name": "i-1", "namespace": "shop"}, "spec": {"dedupKey": "k"}}]])
    kube = kube_with(pages)
    kube.custom.list_cluster_custom_object = pages  # type: ignore[method-assign]
    [incident] = kube.list_all("Incident")
    assert incident["kind"] == "Incident" and incident["spec"] == {"dedupKey": "k"}
    assert pages.calls[0]["_preload_content"] is False


def test_the_adapter_decodes_whatever_json_reads() -> None:
    page = b'{"kind":"PodList","items":[{"metadata":{"name":"a","labels":{"x":"\\u00e9"}},"n":12345678901}]}'
    assert _data(Answer(page)) == json.loads(page)
    # orjson refuses a lone surrogate escape and NaN, which json reads (and the API never writes).
    odd = b'{"data":{"k":"\\ud800"},"x":NaN}'
    decoded = _data(Answer(odd))
    assert decoded["data"] == {"k": "\ud800"} and decoded["x"] != decoded["x"]
