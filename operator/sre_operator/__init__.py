"""sre-operator: an autonomous SRE for Kubernetes (kopf). Fault scenarios are injected and
reverted through the Kubernetes API; incidents are detected, triaged, mitigated, validated and,
when things got worse, undone."""

__version__ = "0.1.0"
