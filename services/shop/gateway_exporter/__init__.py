"""Turns the gateway's JSON access log into Prometheus metrics (plain NGINX has no per-status metrics)."""
