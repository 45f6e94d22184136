"""A steady trickle of shoppers through the gateway (the demo's background traffic)."""
