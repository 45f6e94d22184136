"""One way registries are filled, as Chaos Mesh fills its chaos types: every module of a package is
one member (its module-level `SPEC`), found by walking the package, in the vocabulary's order. A
module without a SPEC that is not a declared helper, or two modules for one member, stops the import:
nothing is ever half registered. `actions/` and `faults/` use it."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection, Iterable
from enum import StrEnum
from typing import Protocol, TypeVar


class Spec(Protocol):
    @property
    def type(self) -> StrEnum: ...


S = TypeVar("S", bound=Spec)
K = TypeVar("K", bound=StrEnum)


def discover(package: str, path: Iterable[str], spec_type: type[S], order: Iterable[K],
             helpers: Collection[str]) -> dict[K, S]:
    """{member: SPEC} of every module of `package` (at `path`) but the `helpers`, in `order`."""
    found: dict[StrEnum, S] = {}
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda i: i.name):
        if info.name in helpers or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, spec_type):
            raise TypeError(f"{module.__name__} is neither a helper nor a member: it defines no SPEC "
                            f"(a {spec_type.__name__})")
        if spec.type in found:
            raise TypeError(f"{module.__name__}: {spec.type.value!r} is defined twice")
        found[spec.type] = spec
    return {member: found[member] for member in order if member in found}
