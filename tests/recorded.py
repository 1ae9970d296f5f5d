"""Test-only helpers beside `reconciler.testing` (the shipped engine fake and its JSON synthesis): the
recorded engine answers in `tests/fixtures/engine/*.json` (made by `scripts/record-fixtures.py`), which the
package must not read, and the seed guide's map the planner tests share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Json = dict[str, Any]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine"

# The seed guide's nginx/uwsgi map (docker-map's "Getting started"), as YAML.
SEED_MAP = """
name: main
nginx:
  image: nginx
  binds: {nginx_config: ro}
  uses: uwsgi_socket
  attaches: nginx_log
  exposes: {80: 80, 443: 443}
uwsgi:
  binds: [{uwsgi_config: ro}, {app_config: ro}, app_data]
  attaches: [uwsgi_log, app_log, uwsgi_socket]
  user: 2000
  permissions: u=rwX,g=rX,o=
volumes:
  nginx_config: /etc/nginx
  nginx_log: /var/log/nginx
  uwsgi_config: /etc/uwsgi
  uwsgi_socket: /var/lib/uwsgi/socket
  uwsgi_log: /var/log/uwsgi
  app_config: /var/lib/app/config
  app_log: /var/lib/app/log
  app_data: /var/lib/app/data
host:
  nginx_config: /var/lib/site/config/nginx
  uwsgi_config: /var/lib/site/config/uwsgi
  app_config: /var/lib/site/config/app
  app_data: /var/lib/site/data/app
"""


def fixture(name: str) -> Json:
    """A fresh copy of a recorded engine answer (`tests/fixtures/engine/<name>.json`)."""
    data: Json = json.loads((FIXTURES / f"{name}.json").read_text())
    return data
