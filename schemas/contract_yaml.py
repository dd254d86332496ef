"""A contract file's YAML read by libyaml, built into Python data twice as fast as PyYAML's constructor.

`status` and every worker read all the contracts whose bytes changed: a thousand of them after a
deploy (the contracts cache is keyed by the parsing code). PyYAML's safe loader spends most of that
time in Python: resolving each plain scalar's tag with regular expressions, then constructing the
data with generators. Here a plain scalar's tag is resolved once per process (a thousand contracts
repeat the same keys and type names), and the nodes a contract is made of (maps, lists, strings)
are built directly; any other node (numbers, booleans, merge keys, sets, explicit tags) is left to
PyYAML's safe constructor, so the data is what `yaml.safe_load` gives."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

STR, SEQ, MAP, MERGE = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "seq", "map", "merge"))
MAX_TAGS = 10_000  # resolved tags kept per process: every key and word of a thousand contracts
_tags: dict[tuple[type[Node], str | None, Any], str] = {}


class ContractLoader(yaml.CSafeLoader):
    """libyaml's safe loader, with each plain scalar's implicit tag kept once resolved."""

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = _tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_tags) < MAX_TAGS:
                _tags[key] = tag
        return tag


def load(text: str) -> Any:
    """The one document of `text`, as `yaml.safe_load` reads it; yaml.YAMLError when it is not valid YAML.

    A document this builder cannot take as it is (a map with a list for a key) is read by PyYAML's
    constructor alone, which explains the problem."""
    loader = ContractLoader(text)
    try:
        return _build(loader, loader.get_single_node(), {})
    except TypeError:  # an unhashable key: PyYAML's own error, with its line
        return yaml.load(text, Loader=yaml.CSafeLoader)
    finally:
        loader.dispose()


def _build(loader: ContractLoader, node: Node | None, built: dict[int, Any]) -> Any:
    """The data of a node: a string, list or map built here (an alias of one shares it, as PyYAML's do),
    any other node by the loader's safe constructor."""
    if node is None:  # an empty document
        return None
    if type(node) is ScalarNode and node.tag == STR:
        return node.value
    if id(node) in built:
        return built[id(node)]
    if type(node) is SequenceNode and node.tag == SEQ:
        items: list[Any] = []
        built[id(node)] = items
        items.extend(_build(loader, item, built) for item in node.value)
        return items
    if type(node) is MappingNode and node.tag == MAP and all(key.tag != MERGE for key, _ in node.value):
        mapping: dict[Any, Any] = {}
        built[id(node)] = mapping
        for key, value in node.value:
            mapping[_build(loader, key, built)] = _build(loader, value, built)
        return mapping
    return loader.construct_object(node, deep=True)
