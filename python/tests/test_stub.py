"""The typed stub (__init__.pyi) names exactly the methods Node and Client have."""
import ast
import pathlib

import storjnet


def stub_methods(cls_name):
    stub = pathlib.Path(storjnet.__file__).resolve().parent / "__init__.pyi"
    tree = ast.parse(stub.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    return {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}


def public_methods(cls):
    """Public methods and properties, plus the dunders a user calls (construction, `with`)."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    return names | {n for n in ("__init__", "__enter__", "__exit__") if n in vars(cls)}


def test_stub_matches_node():
    assert stub_methods("Node") == public_methods(storjnet.Node) - {"id", "host", "port", "network_id", "joined"}


def test_stub_matches_client():
    assert stub_methods("Client") == public_methods(storjnet.Client)
