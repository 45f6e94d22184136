"""localkube: a real Kubernetes cluster on one machine, pods as processes
(kind with processes instead of containers)."""
