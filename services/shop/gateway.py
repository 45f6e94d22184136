"""The gateway's NGINX config: one template (charts/shop/files/nginx.conf.tmpl), rendered here for
local runs and by the shop chart's ConfigMap with Helm's `replace`, token for token."""
from __future__ import annotations

import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "charts" / "shop" / "files" / "nginx.conf.tmpl"
_TOKEN = re.compile(r"@@[A-Z_]+@@")


class TemplateError(ValueError):
    pass


def render_config(*, listen: str, order: str, product: str, access_log: str,
                  run_dir: str = "/tmp",  # noqa: S108 - NGINX's pid and temp files, in the pod's own /tmp
                  template: Path = TEMPLATE) -> str:
    """Fill the template. `listen` is NGINX's `listen` value (`8080`, `127.0.0.1:8080`);
    `order`/`product` are `host:port` upstreams (payment is the order saga's to call, never the
    gateway's); `run_dir` holds the pid and temp files."""
    values = {"@@LISTEN_PORT@@": listen, "@@RUN_DIR@@": run_dir, "@@ORDER_UPSTREAM@@": order,
              "@@PRODUCT_UPSTREAM@@": product, "@@ACCESS_LOG@@": access_log}
    text = template.read_text()
    for token, value in values.items():
        if not value or any(c in value for c in ";{}\n '\""):
            raise TemplateError(f"unsafe value for {token}: {value!r}")
        text = text.replace(token, value)
    left = sorted(set(_TOKEN.findall(text)))
    if left:
        raise TemplateError(f"placeholders left unfilled in {template}: {', '.join(left)}")
    return text
