"""A fast, namespace-tolerant view of an lxml element for the KITH mappings.

KITH payloads mix namespaces (the message's own, poKomponent, fk1, epj1-3) and senders get them wrong, while
local names are unambiguous in context. :class:`Node` indexes an element's children by local name once, on
first use, so a path such as ``"Investigation/Id"`` costs a few dict lookups instead of an ElementPath
evaluation, which matters on the KITH mapping's hot path.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from mappings.kith.xml import first_child as _child
from mappings.kith.xml import tag_name


@lru_cache(maxsize=1024)
def _steps(rel: str) -> tuple[str, ...]:
    return tuple(s for s in rel.split("/") if s)


class Node:
    """An element plus a lazily built index of its element children by local name.

    The index maps a local name to the raw first child of that name (few allocations: it is built for most
    elements of every message); names that repeat keep all their children in a second, usually absent, map.
    A child :class:`Node` is made only when a path reaches it.
    """

    __slots__ = ("_index", "_more", "el")

    def __init__(self, el: etree._Element) -> None:
        self.el = el
        self._index: dict[str, etree._Element] | None = None
        self._more: dict[str, list[etree._Element]] | None = None

    @property
    def name(self) -> str:
        tag = self.el.tag
        return tag[tag.rfind("}") + 1 :]

    @property
    def ns(self) -> str:
        tag = self.el.tag
        return tag[1 : tag.index("}")] if tag.startswith("{") else ""

    def index(self) -> dict[str, etree._Element]:
        """The first element child of each local name (built once, on first use)."""
        index = self._index
        if index is None:
            index = {}
            for child in self.el:
                name = tag_name(child.tag)
                if name is None:
                    continue  # a comment or processing instruction
                if name in index:
                    self._repeat(name, index[name], child)
                else:
                    index[name] = child
            self._index = index
        return index

    def _repeat(self, name: str, first: etree._Element, child: etree._Element) -> None:
        more = self._more if self._more is not None else {}
        self._more = more
        more.setdefault(name, [first]).append(child)

    def all(self, name: str) -> list[etree._Element]:
        """Every element child named ``name``, in document order."""
        first = self.index().get(name)
        if first is None:
            return []
        more = self._more
        return more.get(name, [first]) if more is not None else [first]

    def first(self, name: str) -> etree._Element | None:
        """The raw first child element named ``name`` (one step, no wrapper: the fast path)."""
        return (self._index if self._index is not None else self.index()).get(name)

    def elements(self) -> list[Node]:
        """Element children in document order."""
        return [Node(child) for child in self.el if isinstance(child.tag, str)]

    def find(self, rel: str) -> Node | None:
        """The first element at ``rel`` (``"A/B/C"``, local names), or None."""
        found = self.find_el(rel)
        return Node(found) if found is not None else None

    def find_el(self, rel: str) -> etree._Element | None:
        """The raw first element at ``rel``: the first step through the index, deeper steps by a plain scan
        of the (usually few) children, so intermediate elements are not indexed or wrapped."""
        steps = _steps(rel)
        if not steps:
            return self.el
        found = (self._index if self._index is not None else self.index()).get(steps[0])
        for step in steps[1:]:
            if found is None:
                return None
            found = _child(found, step)
        return found

    def findall(self, rel: str) -> list[Node]:
        """Every element at ``rel``, in document order per parent."""
        nodes = [self]
        for step in _steps(rel):
            nodes = [Node(hit) for n in nodes for hit in n.all(step)]
            if not nodes:
                break
        return nodes

    def descendants(self, name: str) -> list[Node]:
        """Every descendant element with local name ``name`` (``*``: all), in document order."""
        return [Node(el) for el in self.el.iter(f"{{*}}{name}") if el is not self.el]

    def get(self, name: str) -> str | None:
        value = self.el.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    @property
    def text(self) -> str | None:
        value = self.el.text
        if value is None:
            return None
        value = value.strip()
        return value or None
