"""The hand-rolled walks visit exactly what ``ast`` visits, in the same order (findings depend on it)."""

import ast
from pathlib import Path

import flake8_compile_safe
from flake8_compile_safe.astwalk import _CHILD_FIELDS, _LEAF_BASES, child_nodes, walk, walk_branches
from flake8_compile_safe.project import ProjectIndex, non_self_attribute_reads
from flake8_compile_safe.proofs.scopes import scope_nodes
from flake8_compile_safe.proofs.tensors import related_classes

PACKAGE = Path(flake8_compile_safe.__file__).parent
TRICKY = '''\
match x:
    case [1, *rest] if rest:
        pass
    case {"a": b, **kw}:
        pass
try:
    pass
except* ValueError as e:
    pass
def f(a: int = 1, /, *b, c, d=None, e, **f) -> "T":  # kw_defaults holds a None
    global g
    return lambda y: [z async for z in y if z]
x = {**a, "b": -c.d + (e < f.g), 1: not h}  # Dict.keys holds a None; operators, contexts
'''


def _trees():
    yield ast.parse(TRICKY)
    for path in sorted(PACKAGE.rglob("*.py"))[:60]:
        yield ast.parse(path.read_text())


def test_child_nodes_and_walk_match_ast():
    for tree in _trees():
        assert [id(n) for n in walk(tree)] == [id(n) for n in ast.walk(tree)]
        for node in ast.walk(tree):
            assert [id(c) for c in child_nodes(node)] == [id(c) for c in ast.iter_child_nodes(node)]


def test_walk_branches_is_walk_without_leaves():
    for tree in _trees():
        expected = [id(n) for n in ast.walk(tree) if not isinstance(n, _LEAF_BASES)]
        assert [id(n) for n in walk_branches(tree)] == expected


def test_every_concrete_node_type_has_a_field_table():
    # The fast path covers every node a parse produces (a type left out would still be walked,
    # generically, but slowly).
    for tree in _trees():
        for node in ast.walk(tree):
            assert type(node) in _CHILD_FIELDS, type(node).__name__


def test_attribute_reads_are_the_first_in_ast_walk_order():
    source = "def f(a, self):\n    a.x.y\n    if a:\n        b.y = self.z\n    return c.z, self.w\n"
    tree = ast.parse(source)
    expected = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
            expected.setdefault(node.attr, node.lineno)
    assert non_self_attribute_reads(tree) == expected == {"y": 2, "x": 2, "z": 5}


def _reference_scope_nodes(func):
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
                                 ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            stack.extend(ast.iter_child_nodes(node))


def test_scope_nodes_match_the_generator_they_replace_and_are_computed_once():
    for tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = scope_nodes(node)
                assert [id(n) for n in first] == [id(n) for n in _reference_scope_nodes(node)]
                assert scope_nodes(node) is first


def test_related_classes_are_the_mro_then_the_subclasses_in_index_order(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("class Base:\n    pass\n\n\nclass Mid(Base):\n    pass\n")
    (tmp_path / "pkg" / "b.py").write_text(
        "from pkg.a import Base, Mid\n\n\nclass Leaf(Mid):\n    pass\n\n\nclass Other:\n    pass\n\n\n"
        "class Both(Other, Base):\n    pass\n")
    index = ProjectIndex.build(tmp_path)
    by_name = {c.name: c for c in index.classes()}
    names = lambda klass: [c.name for c in related_classes(index, by_name[klass])]  # noqa: E731
    assert names("Base") == ["Base", "Mid", "Leaf", "Both"]
    assert names("Mid") == ["Mid", "Base", "Leaf"]
    assert names("Both") == ["Both", "Other", "Base"]
    assert names("Other") == ["Other", "Both"]


def _reference_walk_expr(node):
    """The generic walk ``callgraph.walk_expr`` replaced: every field tested, lambdas and leaves skipped."""
    skip = (ast.Lambda, ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        for name in current._fields:
            child = getattr(current, name, None)
            if isinstance(child, ast.AST):
                if not isinstance(child, skip):
                    stack.append(child)
            elif isinstance(child, list):
                stack.extend(item for item in child if isinstance(item, ast.AST) and not isinstance(item, skip))
    return out


def test_walk_expr_matches_the_generic_walk():
    from flake8_compile_safe.callgraph import walk_expr

    for tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, (ast.stmt, ast.Lambda)):  # a lambda at the top is walked into
                assert [id(n) for n in walk_expr(node)] == [id(n) for n in _reference_walk_expr(node)]


def test_statement_nodes_join_types_once_in_order():
    from flake8_compile_safe.callgraph import StatementNodes

    stmt = ast.parse("y = f(a[0])[g(b)] + h(c[1])").body[0]
    nodes = StatementNodes(stmt)
    joined = nodes.of(ast.Call, ast.Subscript)
    assert [id(n) for n in joined] == [id(n) for n in nodes.of(ast.Call) + nodes.of(ast.Subscript)]
    assert nodes.of(ast.Call, ast.Subscript) is joined  # cached: the rules ask in every context
    assert [type(n) for n in nodes.of(ast.Subscript, ast.Call)][0] is ast.Subscript


def test_dotted_names():
    from flake8_compile_safe.values import dotted

    def expr(text):
        return ast.parse(text, mode="eval").body

    assert dotted(expr("a")) == "a"
    assert dotted(expr("a.b.c")) == "a.b.c"
    assert dotted(expr("a().b")) is None and dotted(expr("1")) is None


def test_walk_scope_enters_no_nested_scope_even_one_standing_directly_in_the_body():
    import ast

    from flake8_compile_safe.astwalk import walk_scope

    body = ast.parse(
        "x = 1\n"
        "def inner():\n    y = 2\n"
        "class K:\n    z = 3\n"
        "if x:\n    def deeper():\n        w = 4\n    v = 5\n"
    ).body
    names = {node.id for node in walk_scope(body) if isinstance(node, ast.Name)}
    assert names == {"x", "v"}
