"""Name -> class/function registries (``@TRAINER_REGISTRY.register()`` and friends)."""
from typing import Any, Callable, Dict, List, Optional

__all__ = ["Registry", "RegistryKeyError"]


class RegistryKeyError(KeyError):
    """A ``KeyError`` whose message prints without the quotes ``KeyError`` adds."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """Maps names to objects; objects register under their ``__name__``.

    >>> BACKBONE_REGISTRY = Registry("BACKBONE")
    >>> @BACKBONE_REGISTRY.register()
    ... class MyBackbone: ...
    >>> BACKBONE_REGISTRY.get("MyBackbone")
    """

    def __init__(self, name: str):
        self._name = name
        self._obj_map: Dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise RegistryKeyError(f'An object named "{name}" was already registered in "{self._name}" registry')
        self._obj_map[name] = obj

    def register(self, obj: Optional[Any] = None, force: bool = False) -> Optional[Callable]:
        """Register ``obj``, or return a decorator that registers what it decorates."""
        if obj is None:

            def decorator(fn_or_class: Any) -> Any:
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class

            return decorator
        self._do_register(obj.__name__, obj, force=force)
        return None

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            raise RegistryKeyError(
                f'Object name "{name}" does not exist in "{self._name}" registry; '
                f"registered: {sorted(self._obj_map)}"
            )
        return self._obj_map[name]

    def registered_names(self) -> List[str]:
        return list(self._obj_map.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map
