"""The shop's shape, as the operator and the dashboard know it: which service calls which, and the
labels that say what belongs to the application. One description; nothing else repeats it."""
from __future__ import annotations

GATEWAY = "gateway"
# Caller → the services it sends requests to: an outage or a slowdown travels up these edges.
ROUTES_TO: dict[str, tuple[str, ...]] = {GATEWAY: ("order", "product"), "order": ("product", "payment")}
# Every service of the map, callers first (the dashboard draws them in this order).
SERVICES: tuple[str, ...] = (GATEWAY, "order", "product", "payment")

PART_OF_LABEL = "app.kubernetes.io/part-of"
APPLICATION = "shop"
PART_OF = {PART_OF_LABEL: APPLICATION}
PART_OF_SELECTOR = f"{PART_OF_LABEL}={APPLICATION}"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sre-operator"}


def callers_of(service: str) -> list[str]:
    """The services that send requests to `service` (the gateway last: it exports no traces)."""
    return [c for c, deps in ROUTES_TO.items() if service in deps]


def dependencies_of(service: str) -> tuple[str, ...]:
    return ROUTES_TO.get(service, ())


def path_from(service: str) -> list[str]:
    """The service and every service it sends requests to, directly or not (itself first)."""
    seen, todo = [service], [service]
    while todo:
        for dep in dependencies_of(todo.pop(0)):
            if dep not in seen:
                seen.append(dep)
                todo.append(dep)
    return seen
