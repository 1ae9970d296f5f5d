"""docker-map's short forms, table-driven: each spelling means what docker-map 1.x made of it."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model.shortforms import (
    attaches,
    binds,
    endpoints,
    exec_commands,
    healthcheck,
    links,
    ports,
    uses,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("app", [{"path": "app", "readonly": False}]),
        ({"app": "ro"}, [{"path": "app", "readonly": True}]),
        ({"app": "rw"}, [{"path": "app", "readonly": False}]),
        ({"app": True}, [{"path": "app", "readonly": True}]),
        ({"app": None}, [{"path": "app", "readonly": False}]),
        ([["app", "ro"]], [{"path": "app", "readonly": True}]),
        ([["/etc/x", "host/x"]], [{"path": "/etc/x", "host_path": "host/x"}]),
        ([["/etc/x", "host/x", "ro"]], [{"path": "/etc/x", "host_path": "host/x", "readonly": True}]),
        ({"/etc/x": ["host/x", "ro"]}, [{"path": "/etc/x", "host_path": "host/x", "readonly": True}]),
        ({"/etc/x": ["host/x"]}, [{"path": "/etc/x", "host_path": "host/x"}]),
        ({"/etc/x": "host/x"}, [{"path": "/etc/x", "host_path": "host/x"}]),
        ([{"app": "ro"}, "data"], [{"path": "app", "readonly": True}, {"path": "data", "readonly": False}]),
        ([{"name": "app"}], [{"path": "app", "readonly": False}]),
        (None, []),
    ],
)
def test_binds(raw: Any, expected: list[dict[str, Any]]) -> None:
    assert binds(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("log", [{"alias": "log"}]),
        (["log", "sock"], [{"alias": "log"}, {"alias": "sock"}]),
        ([["sock", "/run/sock"]], [{"alias": "sock", "path": "/run/sock"}]),
        ({"sock": "/run/sock"}, [{"alias": "sock", "path": "/run/sock"}]),
        ([{"sock": "/run/sock"}], [{"alias": "sock", "path": "/run/sock"}]),
    ],
)
def test_attaches(raw: Any, expected: list[dict[str, Any]]) -> None:
    assert attaches(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sock", [{"name": "sock"}]),
        ([["sock", "ro"]], [{"name": "sock", "readonly": True}]),
        ([["sock", "/s"]], [{"name": "sock", "path": "/s"}]),
        ([["sock", "/s", "ro"]], [{"name": "sock", "path": "/s", "readonly": True}]),
        ({"sock": ["/s", "ro"]}, [{"name": "sock", "path": "/s", "readonly": True}]),
        ({"sock": None}, [{"name": "sock", "readonly": False}]),
    ],
)
def test_uses(raw: Any, expected: list[dict[str, Any]]) -> None:
    assert uses(raw) == expected


def test_links() -> None:
    assert links("app.one") == [{"container": "app.one"}]
    assert links([["app", "db"], "x"]) == [{"container": "app", "alias": "db"}, {"container": "x"}]
    assert links({"app": "a", "db": None}) == [
        {"container": "app", "alias": "a"},
        {"container": "db", "alias": None},
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (8080, [{"exposed_port": 8080}]),
        ([8080, "53/udp"], [{"exposed_port": 8080}, {"exposed_port": "53/udp"}]),
        ({80: 80}, [{"exposed_port": 80, "host_port": 80}]),
        ({8443: [8443, "private"]}, [{"exposed_port": 8443, "host_port": 8443, "interface": "private"}]),
        (
            [[80, 8080, "eth0", True]],
            [{"exposed_port": 80, "host_port": 8080, "interface": "eth0", "ipv6": True}],
        ),
        ([[80, {"host_port": 81}]], [{"exposed_port": 80, "host_port": 81}]),
    ],
)
def test_ports(raw: Any, expected: list[dict[str, Any]]) -> None:
    assert ports(raw) == expected


def test_network_endpoints() -> None:
    assert endpoints("app") == [{"network_name": "app"}]
    assert endpoints({"bridge": None, "app": {"aliases": ["x"]}}) == [
        {"network_name": "bridge"},
        {"network_name": "app", "aliases": ["x"]},
    ]
    assert endpoints([["net", "alias"]]) == [{"network_name": "net", "aliases": "alias"}]


def test_exec_commands_and_healthcheck() -> None:
    assert exec_commands(["a", ["b", "root"], {"cmd": "c", "policy": "initial"}]) == [
        {"cmd": "a"},
        {"cmd": "b", "user": "root"},
        {"cmd": "c", "policy": "initial"},
    ]
    assert healthcheck("curl x") == {"test": "curl x"}
    assert healthcheck([["curl"], "5s"]) == {"test": ["curl"], "interval": "5s"}


@pytest.mark.parametrize(
    ("func", "raw", "message"),
    [
        (binds, [[1, 2, 3, 4]], "a bind needs 1 to 3 entries"),
        (binds, [{"path": "/x", "nope": 1, "other": 2}], "unknown key(s) 'nope'"),
        (attaches, [["a", "b", "c"]], "an attached volume is `alias` or `[alias, path]`"),
        (links, [["a", "b", "c"]], "a link is `container` or `[container, alias]`"),
        (ports, [[1, 2, 3, 4, 5]], "a port binding has 1 to 4 entries"),
        (ports, [True], "a port must be a number"),
        (binds, [{"x": {"y": 1}}], "host path must be a string"),
    ],
)
def test_malformed_short_forms(func: Any, raw: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:  # noqa: PT011 - the message is checked below
        func(raw)
    assert message in str(caught.value)
