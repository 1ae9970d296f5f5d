"""Every bad map gets one clear message naming file, line, column and key path — and never a traceback."""

from __future__ import annotations

import textwrap

import pytest

from reconciler.model import MapError, combine_maps, load_map_text
from reconciler.plan.desired import desired_state


def problems(text: str) -> list[str]:
    with pytest.raises(MapError) as caught:
        load_map_text(textwrap.dedent(text), "site.yaml")
    return [str(p) for p in caught.value.errors]


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


BASE = """\
name: site
volumes:
  app_config: /etc/app
  app_log: /var/log/app
host:
  app_config: /srv/app
"""


def test_unknown_volume_alias_with_did_you_mean() -> None:
    msg = one_problem(BASE + "web:\n  binds:\n    - app_cfg: ro\n    - app_config\n")
    assert msg == ("site.yaml:9:7: web.binds[0]: unknown volume alias 'app_cfg' (did you mean 'app_config'?)")


def test_alias_bind_without_host_path() -> None:
    text = BASE.replace("host:\n  app_config: /srv/app\n", "host: {}\n") + "web:\n  binds: app_config\n"
    msg = one_problem(text)
    assert msg.startswith("site.yaml:7:3: web.binds: ")
    assert "volume alias 'app_config' has no host path in 'host'" in msg


def test_alias_without_path_in_volumes() -> None:
    msg = one_problem(BASE + "web:\n  attaches: app_lgo\n")
    assert msg == "site.yaml:8:3: web.attaches: unknown volume alias 'app_lgo' (did you mean 'app_log'?)"


def test_uses_must_name_an_attached_volume_or_a_config() -> None:
    msg = one_problem(BASE + "app:\n  attaches: app_log\nweb:\n  uses: app_logs\n")
    assert msg == (
        "site.yaml:10:3: web.uses: 'app_logs' is neither an attached volume nor a container config "
        "(did you mean 'app_log'?)"
    )


def test_uses_of_a_config_that_provides_no_volumes() -> None:
    msg = one_problem(BASE + "app: {}\nweb:\n  uses: [app]\n")
    assert "web.uses[0]: config 'app' provides no volumes to use" in msg


def test_link_to_unknown_config_and_instance() -> None:
    found = problems(BASE + "app:\n  instances: [one, two]\nweb:\n  links: [app.three, db, app]\n")
    assert found == [
        "site.yaml:10:11: web.links[0]: link to unknown instance 'app.three' (instances: one, two)",
        "site.yaml:10:22: web.links[1]: link to unknown config 'db'",
        "site.yaml:10:26: web.links[2]: link to 'app' must name one of its instances: 'app.one', 'app.two'",
    ]


def test_link_positions_point_at_list_items() -> None:
    msg = one_problem(BASE + "app: {}\nweb:\n  links:\n    - app\n    - ap\n")
    assert msg == "site.yaml:11:7: web.links[1]: link to unknown config 'ap' (did you mean 'app'?)"


def test_unknown_network_and_network_mode() -> None:
    found = problems(BASE + "networks: {backend: null}\nweb:\n  networks: [bakend]\nside:\n  network_mode: wbe\n")
    assert found == [
        "site.yaml:9:14: web.networks[0]: unknown network 'bakend' (did you mean 'backend'?)",
        "site.yaml:11:3: side.network_mode: network_mode to unknown config 'wbe' (did you mean 'web'?)",
    ]


def test_group_members_and_group_name_clash() -> None:
    found = problems(BASE + "web: {}\napp: {}\ngroups:\n  web: [app]\n  all: [web, ap]\n")
    assert found == [
        "site.yaml:10:3: groups.web: group 'web' has the same name as a container config",
        "site.yaml:11:14: groups.all[1]: group member 'ap' is not a config (did you mean 'app'?)",
    ]


def test_dependency_cycle_shows_the_cycle() -> None:
    msg = one_problem(BASE + "a:\n  links: b\nb:\n  links: c\nc:\n  links: a\n")
    assert "dependency cycle:" in msg
    cycle = msg.split("dependency cycle: ")[1]
    assert set(cycle.split(" → ")) == {"a", "b", "c"}
    assert cycle.split(" → ")[0] == cycle.split(" → ")[-1]


def test_duplicate_attached_alias() -> None:
    msg = one_problem(BASE + "a:\n  attaches: app_log\nb:\n  attaches: app_log\n")
    assert "attached volume 'app_log' is already attached by 'a'" in msg


def test_unknown_container_key_with_did_you_mean() -> None:
    msg = one_problem(BASE + "web:\n  imagee: nginx\n")
    assert msg == "site.yaml:8:3: web.imagee: unknown key 'imagee' (did you mean 'image'?)"


def test_unknown_key_under_containers_wrapper() -> None:
    msg = one_problem("name: s\ncontainers:\n  web:\n    linkss: []\n")
    assert msg == "site.yaml:4:5: containers.web.linkss: unknown key 'linkss' (did you mean 'links'?)"


def test_misspelt_map_key_is_explained() -> None:
    msg = one_problem("name: s\nvolumnes:\n  data: /data\n")
    assert msg.startswith("site.yaml:3:3: volumnes.data: unknown key 'data'")


def test_bad_types_and_values() -> None:
    assert one_problem("name: s\nweb:\n  image: [nginx]\n") == (
        "site.yaml:3:3: web.image: Input should be a valid string"
    )
    assert "is not chmod notation" in one_problem("name: s\nweb:\n  permissions: u=rwZ\n")
    assert "is not a user" in one_problem("name: s\nweb:\n  user: 'a:b:c'\n")
    assert "is not a duration" in one_problem("name: s\nweb:\n  healthcheck: {test: [x], interval: soon}\n")
    assert "is not a port" in one_problem("name: s\nweb:\n  exposes: [http]\n")
    assert "a bind needs 1 to 3 entries" in one_problem("name: s\nweb:\n  binds: [[a, b, c, d]]\n")
    assert one_problem("name: s\nweb:\n  healthcheck: {test: true}\n") == (
        "site.yaml:3:17: web.healthcheck.test: expected a string or a list, got bool"
    )


def test_extends_unknown_and_loop() -> None:
    assert one_problem("name: s\nweb:\n  extends: bsae\nbase: {}\n") == (
        "site.yaml:3:3: web.extends: extends unknown config 'bsae'"
    )
    assert "'extends' loops back on itself" in one_problem("name: s\na: {extends: b}\nb: {extends: a}\n")


def test_yaml_syntax_error_has_position() -> None:
    msg = one_problem("name: s\nweb:\n  image: [nginx\n")
    assert msg.startswith("site.yaml:4:1: <map>: YAML syntax error")


def test_duplicate_keys_are_errors() -> None:
    assert one_problem("name: s\nweb: {}\nweb: {}\n") == "site.yaml:3:1: web: duplicate key 'web'"


def test_python_tags_are_refused() -> None:
    msg = one_problem("name: s\nweb: !!python/object:os.system {}\n")
    assert "unsupported YAML tag" in msg


def test_not_a_mapping() -> None:
    assert "a map file must be a mapping" in one_problem("- a\n- b\n")


def test_missing_name() -> None:
    with pytest.raises(MapError) as caught:
        load_map_text("web: {}\n")
    assert "the map has no 'name'" in str(caught.value)


def test_instance_missing_host_path_is_a_warning_not_an_error() -> None:
    from reconciler.model import combine_maps

    m = load_map_text(
        "name: s\nvolumes: {d: /d}\nhost:\n  d: {one: /srv/one}\napp:\n  instances: [one, two]\n  binds: d\n",
        "site.yaml",
    )
    [warning] = combine_maps([m]).warnings
    assert str(warning) == (
        "site.yaml:4:3: host.d: warning: no host path for 'd' for instance 'app.two' "
        "(add it or a 'default'); that container cannot be created"
    )


def test_permissions_as_a_yaml_number_of_another_base_is_rejected_naming_file_line_and_key() -> None:
    """`0x1f8` is 504 to YAML 1.1: no evident chmod mode, so it is refused rather than run as `chmod 504`."""
    msg = one_problem(BASE + "app:\n  attaches: app_log\n  permissions: 0x1F8\n")
    assert msg == (
        "site.yaml:9:3: app.permissions: YAML reads 0x1F8 as the number 504, which is not a chmod mode: "
        "write octal digits (750, 0750) or quote a symbolic mode ('u=rwX,g=rX,o=')"
    )


def test_volume_permissions_as_a_yaml_binary_number_is_rejected() -> None:
    text = BASE.replace("  app_log: /var/log/app\n", "  app_log: {default_path: /var/log/app, permissions: 0b111}\n")
    msg = one_problem(text + "app:\n  attaches: app_log\n")
    assert msg.startswith("site.yaml:4:41: volumes.app_log.permissions: YAML reads 0b111 as the number 7, ")


CLASH = """\
name: site
volumes:
  data: /data
store:
  user: 1000
  attaches: data
data:
  instances: [main, init]
"""


def test_instance_named_like_a_volume_init_is_rejected_naming_both() -> None:
    """Config `data`'s instance `init` and attached volume `data`'s init container are both `site.data.init`."""
    assert one_problem(CLASH) == (
        "site.yaml:8:21: data.instances[1]: container 'site.data.init' has the same name as the init container "
        "of attached volume 'site.data' (site.yaml:6:3: store.attaches); rename the instance or the alias"
    )


def test_instance_clash_with_an_init_of_the_config_itself_and_through_extends() -> None:
    text = "name: site\nvolumes: {data: /data}\nbase: {abstract: true, instances: [init]}\n"
    found = one_problem(text + "data: {extends: base, attaches: [data]}\n")
    assert found.startswith("site.yaml:4:1: data: container 'site.data.init' has the same name as the init ")
    assert found.endswith("(site.yaml:4:34: data.attaches[0]); rename the instance or the alias")


def test_the_clash_is_real_in_the_names_the_planner_builds() -> None:
    """The check's naming agrees with `reconciler.plan.naming`: unchecked, both resources get one name."""
    state = desired_state(combine_maps([load_map_text(CLASH, "site.yaml", check=False)]))
    assert "site.data.init" in state.inits
    assert "site.data.init" in state.containers


def test_with_use_attached_parent_name_instances_and_inits_cannot_clash() -> None:
    """Inits are then `<map>.<config>.<alias>.init`: one part more than any container name."""
    m = load_map_text("use_attached_parent_name: true\n" + CLASH, "site.yaml")
    assert m.instances("data") == ["main", "init"]


def test_two_linked_containers_known_by_one_alias_are_rejected() -> None:
    """`a_b` and `a-b` both default to the alias `a-b` (docker-map's hostname form): only one would be reachable."""
    msg = one_problem("name: site\na_b: {}\na-b: {}\nweb:\n  links: [a_b, a-b]\n")
    assert msg == (
        "site.yaml:5:3: web.links: links to 'a_b' and 'a-b' are both known as 'a-b' (a link without an alias is "
        "known by its name with '.' and '_' as '-'): give one an alias"
    )


def test_an_explicit_alias_naming_another_links_default_is_rejected_on_endpoints_too() -> None:
    text = "name: site\nnetworks: {n: {}}\ndb: {}\ncache: {}\nweb:\n  networks: [[n, {links: [db, [cache, db]]}]]\n"
    assert "site.yaml:6:14: web.networks[0]: links to 'db' and 'cache' are both known as 'db'" in one_problem(text)


def test_two_links_to_one_container_under_one_alias_are_fine() -> None:
    load_map_text("name: site\ndb: {}\nweb: {links: [db, [db, db]]}\n", "site.yaml")


def test_a_relative_shared_volume_path_is_an_error_at_its_line() -> None:
    """The engine stores a relative `shares` path at the first create and refuses it at every later one:
    the container could never be recreated or updated (found by trying the product as a new user)."""
    msg = one_problem(BASE + "web:\n  image: x\n  shares: [/ok, cache]\n")
    assert msg == "site.yaml:9:17: web.shares[1]: shared volume path 'cache' must be absolute (a container path)"


def test_a_relative_container_path_of_a_volume_alias_is_an_error_at_its_line() -> None:
    msg = one_problem(BASE.replace("app_log: /var/log/app", "app_log: var/log/app") + "web:\n  image: x\n")
    assert msg == "site.yaml:4:3: volumes.app_log: volume 'app_log': container path 'var/log/app' must be absolute"


@pytest.mark.parametrize("image", ["''", "' '", "'nginx latest'", "' nginx'", '"nginx\\t"'])
def test_an_image_name_with_whitespace_or_empty_is_refused_where_it_was_written(image: str) -> None:
    msg = one_problem(f"name: site\nweb:\n  image: {image}\n")
    assert msg.startswith("site.yaml:3:"), msg
    assert "is not an image name" in msg


def test_an_image_name_without_whitespace_is_taken() -> None:
    maps = combine_maps([load_map_text("name: site\nweb: {image: 'registry:5000/a/b:1.2@sha256:ab'}\n", "site.yaml")])
    assert desired_state(maps).containers["site.web"].image == "registry:5000/a/b:1.2@sha256:ab"
