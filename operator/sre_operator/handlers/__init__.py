"""kopf handlers: short, each calling into the pure stages and the adapters."""
