"""The seed's fault scenarios as FaultScenario manifests, and a CLI to apply and remove them."""
