"""Project: give every ONNX node the module that produced it.

Exact provenance comes from the exporter (TorchScript scope names, dynamo ``name_scopes``),
resolved against the traced call tree. Nodes the exporter made on its own (Constants,
Identity, optimizer output) get a module by data flow where that is unambiguous and are
otherwise counted as unattributed with a reason. Nothing falls back to the root silently.
"""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import NamedTuple

from modelexport import modulepath
from modelexport.htp.trace import CallTree
from modelexport.sidecar import TagStatistics

EXACT, INFERRED, UNATTRIBUTED = "exact", "inferred", "unattributed"


class GraphNode(NamedTuple):
    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    provenance: str | None  # the exporter's own record: a scoped name, a name_scopes value

Resolver = Callable[[str | None], str | None]  # provenance -> module path


class Tag(NamedTuple):
    module: str | None
    how: str  # EXACT | INFERRED | UNATTRIBUTED
    reason: str | None = None


def torchscript_resolver(tree: CallTree) -> Resolver:
    """Map a TorchScript node name to a module path.

    Names look like ``/encoder/layer.0/attention/self/query/MatMul``: one segment per scope,
    each the module's name relative to *some* enclosing called module, not always the
    innermost (ResNet: ``/layers.0/layer/layer.0/`` where ``layer.0`` is relative to
    ``layers.0``, not to the Sequential ``layer``). So each segment is tried against the
    enclosing modules from the innermost out, and must name a module that was called.
    Exporter-made nodes (``Identity_3``) carry no scope and resolve to None.
    """
    called = tree.called
    counts = tree.call_counts()
    cache: dict[str, str | None] = {}

    def lookup(outer: str, segment: str) -> str | None:
        candidate = f"{outer}.{segment}" if outer else segment
        if candidate in called:
            return candidate
        # The second call of a module gets its scope suffixed: GPT-2's ``/wte_1/Gather``.
        base, sep, index = candidate.rpartition("_")
        if sep and index.isdigit() and counts.get(base, 0) > int(index):
            return base
        return None

    def resolve(scope: str) -> str | None:
        chain = [""]
        for segment in scope.split("/")[1:]:
            found = next(filter(None, (lookup(o, segment) for o in reversed(chain))), None)
            if found is None:
                return None
            chain.append(found)
        return chain[-1]

    def module_of(node_name: str | None) -> str | None:
        if not node_name or not node_name.startswith("/"):
            return None
        scope = node_name.rpartition("/")[0]
        if scope not in cache:
            cache[scope] = resolve(scope)
        return cache[scope]

    return module_of


_CALL_INDEX = re.compile(r"@\d+$")


def dynamo_resolver(tree: CallTree) -> Resolver:
    """Map a dynamo node's ``pkg.torch.onnx.name_scopes`` value to a module path.

    The value is a Python list repr; its last entry is the FX node's own name and the one
    before it the owning module ('' for the root).
    """

    def module_of(name_scopes: str | None) -> str | None:
        if not name_scopes:
            return None
        scopes = ast.literal_eval(name_scopes)
        if len(scopes) < 2:
            return None
        module = _CALL_INDEX.sub("", scopes[-2])
        return module if module in tree.classes else None

    return module_of


def project(
    nodes: list[GraphNode], tree: CallTree, resolve: Resolver, param_owner: dict[str, str]
) -> list[Tag]:
    """One Tag per node: exact from provenance, else inferred by data flow, else unattributed.

    ``param_owner`` maps initializer names that are parameters to the owning module path.
    """
    direct = [resolve(node.provenance) for node in nodes]
    with_nodes = set(direct)
    tags: list[Tag | None] = [
        Tag(_fused_owner(module, node, tree, param_owner, with_nodes), EXACT)
        if module is not None else None
        for module, node in zip(direct, nodes, strict=True)
    ]
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        for name in node.outputs:
            producer[name] = i
        for name in node.inputs:
            consumers[name].append(i)

    def neighbours(indices: list[int]) -> set[str]:
        return {t.module for j in indices if (t := tags[j]) and t.module is not None}

    # Nodes come topologically sorted: walking backwards settles chains of untagged nodes
    # (Constant -> Identity -> MatMul) from their consumers in one pass; forwards, producers.
    for i in reversed(range(len(nodes))):
        if tags[i] is None:
            found = neighbours([j for out in nodes[i].outputs for j in consumers[out]])
            users = sorted(j for out in nodes[i].outputs for j in consumers[out])
            tag = _decide(found, "consumers", tree) if found else None
            if tag and tag.module is None and _reads_model_inputs(nodes[i], producer,
                                                                  param_owner):
                # dynamo computes the size of an input once (Shape(attention_mask)) for
                # modules that each compute it under TorchScript (T5's encoder and
                # decoder): it goes where it is first used, as one computation would.
                first = next(m for j in users for m in neighbours([j]))
                tag = Tag(first, INFERRED, "first user of the model's inputs")
            tags[i] = tag
    for i in range(len(nodes)):
        if tags[i] is None:
            found = neighbours([producer[n] for n in nodes[i].inputs if n in producer])
            tags[i] = _decide(found, "producers", tree) if found else None
    return [t or Tag(None, UNATTRIBUTED, "no tagged neighbour") for t in tags]


def _reads_model_inputs(node: GraphNode, producer: dict[str, int],
                        param_owner: dict[str, str]) -> bool:
    return bool(node.inputs) and not any(
        name in producer or name in param_owner for name in node.inputs)


def _fused_owner(
    module: str, node: GraphNode, tree: CallTree, param_owner: dict[str, str],
    with_nodes: set[str | None],
) -> str:
    """Correct a provenance that an optimizer fusion moved to a sibling leaf.

    The dynamo optimizer folds BatchNorm into the preceding Conv and keeps the BatchNorm's
    name scope, although the node reads ``convolution.weight``: the Conv2d is left with no
    node at all. So a node that reads the parameters of exactly one other torch.nn leaf
    beside its own, a leaf with no node of its own, belongs to that leaf. The other two
    reasons a node reads a foreign parameter keep their tag: tied weights (an LM head
    reading the embedding: not a sibling) and deduplicated equal initializers (the
    parameter's owner has its own nodes).
    """
    owners = {param_owner[name] for name in node.inputs if name in param_owner}
    if len(owners) != 1 or module in owners or module not in tree.builtin:
        return module
    (owner,) = owners
    fused = (
        owner.rpartition(".")[0] == module.rpartition(".")[0]
        and owner in tree.builtin
        and owner not in with_nodes
    )
    return owner if fused else module


def _decide(modules: set[str], direction: str, tree: CallTree) -> Tag:
    if len(modules) == 1:
        return Tag(next(iter(modules)), INFERRED, direction)
    common = _common_ancestor(modules, tree)
    if common == "" and "" not in modules:
        return Tag(None, UNATTRIBUTED, "shared by unrelated modules")
    return Tag(common, INFERRED, f"common ancestor of {direction}")


def _common_ancestor(modules: set[str], tree: CallTree) -> str:
    """Deepest *called* module whose subtree holds all of ``modules``."""
    called = tree.called
    return next((path for path in modulepath.ancestors(modulepath.common(modules))
                 if path in called), "")


def statistics(nodes: list[GraphNode], tags: list[Tag], tree: CallTree) -> TagStatistics:
    hows = Counter(t.how for t in tags)
    reasons: dict[str, Counter[str]] = {INFERRED: Counter(), UNATTRIBUTED: Counter()}
    for tag in tags:
        if tag.how != EXACT:
            reasons[tag.how][str(tag.reason)] += 1
    return TagStatistics(
        nodes=len(nodes),
        exact=hows[EXACT],
        inferred=hows[INFERRED],
        unattributed=hows[UNATTRIBUTED],
        inferred_reasons=dict(reasons[INFERRED]),
        unattributed_reasons=dict(reasons[UNATTRIBUTED]),
        modules_called=len(tree.called),
        modules_with_nodes=len({t.module for t in tags if t.module is not None}),
        op_types=dict(sorted(Counter(n.op_type for n in nodes).items())),
    )
