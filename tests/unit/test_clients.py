"""Client configurations and placement (reconciler.model.clients), and the per-client desired state: pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.model import MapSet, combine_maps, load_map_text
from reconciler.model.clients import (
    DEFAULT_CLIENT,
    ClientsError,
    config_clients,
    load_clients,
    load_clients_file,
    placement_problems,
)
from reconciler.plan import naming
from reconciler.plan.desired import desired_state

MAP = """\
name: site
clients: [web1, web2]
web:
  image: nginx
  clients: [web1]
  exposes: [[80, 8080, private]]
app:
  image: app
  instances: [a, b]
plain:
  image: plain
  exposes: [[81, 8181, 10.0.0.9]]
"""
CLIENTS = {
    "web1": {"base_url": "tcp://10.0.0.1:2376", "interfaces": {"private": "10.0.0.1"}, "tls": True},
    "web2": {"base_url": "unix:///run/web2.sock", "interfaces": {"private": "10.0.0.2"}, "timeout": 5},
}


def maps() -> MapSet:
    return combine_maps([load_map_text(MAP, "site.yaml")])


def test_a_clients_file_reads_docker_maps_format_and_adds_the_local_engine(tmp_path: Path) -> None:
    file = tmp_path / "clients.yaml"
    file.write_text("web1:\n  base_url: tcp://10.0.0.1:2376\n  tls: {ca_cert: ca.pem, client_cert: [c.pem, k.pem]}\n")
    clients = load_clients_file(file)
    assert sorted(clients) == [DEFAULT_CLIENT, "web1"]
    assert clients[DEFAULT_CLIENT].base_url is None
    tls = clients["web1"].tls
    assert tls is not None
    assert tls.client_cert == ("c.pem", "k.pem")


def test_placement_own_clients_else_the_maps_else_default() -> None:
    m = maps()["site"]
    clients = load_clients(CLIENTS)
    assert config_clients(m, "web", clients) == ("web1",)
    assert config_clients(m, "app", clients) == ("web1", "web2")
    assert config_clients(m, "app", None) == (DEFAULT_CLIENT,)  # no clients file: one engine


def test_each_client_gets_its_share_with_its_own_interface_addresses() -> None:
    clients = load_clients(CLIENTS)
    one = desired_state(maps(), clients["web1"], clients)
    two = desired_state(maps(), clients["web2"], clients)
    assert sorted(one.containers) == ["site.app.a", "site.app.b", "site.plain", "site.web"]
    assert sorted(two.containers) == ["site.app.a", "site.app.b", "site.plain"]
    assert one.containers["site.web"].ports[0].host_ip == "10.0.0.1"
    assert two.client == "web2"


def test_the_client_is_never_part_of_the_spec_hash() -> None:
    clients = load_clients(CLIENTS)
    alone = desired_state(combine_maps([load_map_text(MAP.replace("private", "10.0.0.1"), "site.yaml")]))
    placed = desired_state(maps(), clients["web1"], clients)
    assert alone.containers["site.app.a"].spec_hash == placed.containers["site.app.a"].spec_hash
    assert alone.containers["site.web"].spec_hash == placed.containers["site.web"].spec_hash


def test_ownership_and_labels_name_the_client() -> None:
    labels = naming.base_labels("container", "site", "web", client="web1")
    assert labels[naming.LABEL_CLIENT] == "web1"
    assert naming.LABEL_CLIENT not in naming.base_labels("container", "site", "web")
    assert naming.owned_by(labels, ["site"], "web1")
    assert not naming.owned_by(labels, ["site"], DEFAULT_CLIENT)
    assert naming.owned_by({naming.LABEL_MANAGED: "true", naming.LABEL_MAP: "site"}, ["site"], DEFAULT_CLIENT)


def test_an_interface_alias_without_a_client_that_defines_it_is_a_problem() -> None:
    desired = desired_state(maps())
    assert any("interface 'private'" in message for _rid, message in desired.problems)


def test_unknown_clients_are_problems_at_their_line() -> None:
    problems = placement_problems(maps(), load_clients({"web1": {}}))
    assert [(p.line, p.message) for p in problems] == [(2, "unknown client 'web2' (did you mean 'web1'?)")]


@pytest.mark.parametrize(
    "data",
    [[], {"a": []}, {"a": {"timeout": {}}}, {"a": {"tls": "yes"}}, {"a": {"interfaces": ["x"]}}, {"a": {"bse_url": 1}}],
)
def test_bad_client_settings_are_clients_errors(data: object) -> None:
    with pytest.raises(ClientsError):
        load_clients(data)


def test_a_client_named_by_only_is_used_even_when_the_maps_no_longer_place_anything_there() -> None:
    """After `clients: [a, b]` became `[a]`, `--client b` must still reach b: what the map left there is an
    orphan that plan --prune, status and down can see only on b's own share."""
    from reconciler.executor.clients import deployments
    from reconciler.model import combine_maps, load_map_text
    from reconciler.model.clients import ClientConfig

    maps = combine_maps([load_map_text("name: m\nclients: [a]\napp: {image: x}\n", "/tmp/m.yaml")])
    clients = {"a": ClientConfig(name="a"), "b": ClientConfig(name="b")}
    assert [d.name for d in deployments(maps, clients)] == ["a"]
    (left,) = deployments(maps, clients, ["b"])
    assert left.name == "b"
    assert not left.desired.containers
    assert left.desired.maps == frozenset({"m"})  # so the map's objects on b are its orphans
