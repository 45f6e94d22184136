"""The node agent: a kubelet whose containers are processes.

Each pod gets a network namespace wired into the node's bridge, each container a cgroup, a private
mount namespace over a copy-on-write view of the machine's root (volumes at their mountPaths), and
a small shim that keeps its log and exit status so the agent can restart and adopt it.
"""
