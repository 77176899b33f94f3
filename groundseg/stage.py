"""The shape every stage of the chain has, and the statistics it keeps.

A stage is a pure kernel behind a thin stateful wrapper:

- ``push(x) -> out``: what this input completes (possibly empty);
- ``flush() -> out``: the end of the stream: whatever is still pending;
- ``reset()``: a new stream (next file, a receiver reconnected): state that crosses
  chunk boundaries is forgotten, statistics are kept;
- ``stats``: a :class:`Stats` dataclass of what the stage counted over every stream.

Stages compose as a list (``groundseg.coding.channel.ChannelDecoder`` builds its list
from the link's configuration), so an inner decoder before sync or another code after
it is one more entry, not new wiring.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable


class Stats:
    """Base of the statistics dataclasses (declare them ``@dataclass(eq=False)``): ``to_dict()``
    for reports, read access by
    key (``stats["frames"]["total"]``) so reports and stats read alike."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Stats):
                v = v.to_dict()
            elif isinstance(v, dict):
                v = {k: (x.to_dict() if isinstance(x, Stats) else x) for k, x in v.items()}
            elif isinstance(v, list):
                v = [x.to_dict() if isinstance(x, Stats) or hasattr(x, "to_dict") else x for x in v]
            out[f.name] = v
        return out

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self):
        return self.to_dict().keys()

    def items(self):
        return self.to_dict().items()

    def values(self):
        return self.to_dict().values()

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __contains__(self, key) -> bool:
        return key in self.to_dict()

    def __eq__(self, other) -> bool:
        # subclasses are @dataclass(eq=False) so this applies: equal to a dict of the same content
        if isinstance(other, Stats):
            return self.to_dict() == other.to_dict()
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None

    def add(self, other: "Stats") -> None:
        """Add ``other``'s integer counts to this one's (same dataclass)."""
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, Stats):
                a.add(b)
            elif isinstance(a, int) and not isinstance(a, bool):
                setattr(self, f.name, a + b)


@runtime_checkable
class Stage(Protocol):
    def push(self, x): ...

    def flush(self): ...

    def reset(self) -> None: ...

    @property
    def stats(self) -> Stats: ...
