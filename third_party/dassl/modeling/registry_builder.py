"""One ``build_<kind>(name, verbose=True, **kwargs)`` for every model registry."""
from typing import Any, Callable

from dassl.utils import Registry, check_availability


def make_builder(registry: Registry, what: str) -> Callable[..., Any]:
    """A function that resolves ``name`` in ``registry`` and calls it with ``**kwargs``."""

    def build(name: str, verbose: bool = True, **kwargs) -> Any:
        check_availability(name, registry.registered_names(), what=what)
        if verbose:
            print(f"{what.capitalize()}: {name}")
        return registry.get(name)(**kwargs)

    build.__name__ = f"build_{what}"
    build.__doc__ = f"Build the {what} registered as ``name`` with ``**kwargs``."
    return build
