"""A new gateway config is held to an allowlist before anything else (issue "Trust boundaries"):
configs that `nginx -t` accepts but that would serve the host's files, send requests anywhere or
write where they must not are refused, and nothing nginx prints is passed on. Uses Debian's nginx."""
from __future__ import annotations

import pytest

from shop.gateway import render_config
from sre_operator.actions import configcheck

GOOD = render_config(listen="8080", order="order:5001", product="product:5002",
                     access_log="/var/log/gateway/access.json")
SERVICES = {"order": {5001}, "product": {5002}, "payment": {5003}, "gateway": {80}}
LOCATION = "        location = /api/products { proxy_pass http://product_service; }\n"


def with_location(extra: str) -> str:
    assert LOCATION in GOOD
    return GOOD.replace(LOCATION, LOCATION + extra)


def test_the_shop_s_own_config_passes() -> None:
    assert configcheck.allowlist_problems(GOOD) == []
    assert configcheck.check_nginx_config(GOOD, "shop", SERVICES).ok


@pytest.mark.parametrize(("extra", "reason"), [
    ("location /fs/ { alias /; autoindex on; }\n", "'alias' is not allowed"),
    ("location /fs/ { root /; }\n", "'root' is not allowed"),
    ("location /x { proxy_pass http://10.0.0.1:80; }\n", "only http://<an upstream of this config>"),
    ("location /x { proxy_pass http://metadata.google.internal/; }\n", "only http://<an upstream"),
    ("location /x { proxy_pass http://not_declared; }\n", "only http://<an upstream"),
    ("location /x { access_log /etc/cron.d/evil; }\n", "only stdout, stderr or /var/log/gateway/"),
    ("location /x { access_log /var/log/gateway/../../../etc/x; }\n", "only stdout, stderr"),
    ("include /etc/nginx/*.conf;\n", "'include' is not allowed"),
    ("location /x { content_by_lua 'os.execute(\"id\")'; }\n", "'content_by_lua' is not allowed"),
    ("listen 9999;\n", None),  # allowed directive in the server block: the allowlist lets it be
])
def test_configs_nginx_would_accept_are_refused_when_outside_the_allowlist(extra: str, reason: str | None) -> None:
    problems = configcheck.allowlist_problems(with_location(extra))
    if reason is None:
        assert problems == []
    else:
        assert any(reason in p for p in problems), problems
        result = configcheck.check_nginx_config(with_location(extra), "shop", SERVICES)
        assert not result.ok and result.checked_with == "allowlist"


def test_pid_and_temp_files_only_under_tmp_and_no_load_module_at_the_top() -> None:
    assert any("only under /tmp/" in p for p in configcheck.allowlist_problems(
        GOOD.replace("pid /tmp/", "pid /etc/")))
    assert any("'load_module' is not allowed" in p for p in configcheck.allowlist_problems(
        "load_module /x.so;\n" + GOOD))


def test_an_upstream_outside_the_namespace_is_refused() -> None:
    bad = GOOD.replace("server order:5001;", "server 169.254.169.254:80;")
    result = configcheck.check_nginx_config(bad, "shop", SERVICES)
    assert not result.ok and "outside namespace" in result.message()


def test_what_nginx_prints_is_never_passed_on() -> None:
    # Allowed directives, invalid value: nginx -t fails and quotes it; only the line is reported.
    bad = GOOD.replace("worker_connections 1024;", "worker_connections SECRET-TOKEN-abc123;")
    result = configcheck.check_nginx_config(bad, "shop", SERVICES)
    assert not result.ok
    assert "SECRET-TOKEN" not in result.message() and result.message().startswith("nginx -t rejected the config")


def test_the_lexer_keeps_quoted_braces_and_drops_comments() -> None:
    assert configcheck.tokens("a 'x { y ;' b; # c { d\ne;") == ["a", "'x { y ;'", "b", ";", "e", ";"]
    assert configcheck.allowlist_problems("events { worker_connections 1; \n") == ["1 block(s) not closed"]
    assert configcheck.allowlist_problems("return 'unterminated;") == ["a quoted string is not closed"]
