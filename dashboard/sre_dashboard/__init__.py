"""The dashboard: watch the agents work (service map, incidents, the agents' log, charts)."""
