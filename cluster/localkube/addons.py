"""What a fresh cluster gets before any workload, as kind sets it up: CoreDNS behind the usual
`kube-dns` Service (here a node process, published through a selector-less Service and its
EndpointSlice), its RBAC, and the default StorageClass `standard`."""
from __future__ import annotations

from pathlib import Path

from . import controlplane as cp


def corefile(kubeconfig: Path) -> str:
    # No `forward`: names outside the cluster get no answer, so no DNS traffic ever leaves.
    return f""".:53 {{
    bind {cp.NODE_IP}
    errors
    health 127.0.0.1:8181
    ready 127.0.0.1:8182
    kubernetes {cp.DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} localkube
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


MANIFEST = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: localkube:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: localkube:coredns
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "localkube:coredns"}}
subjects:
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: "localkube:coredns"}}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns, kubernetes.io/name: CoreDNS}}
spec:
  clusterIP: {cp.DNS_SERVICE_IP}
  ports:
    - {{name: dns, port: 53, protocol: UDP, targetPort: 53}}
    - {{name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: localkube
addressType: IPv4
ports:
  - {{name: dns, port: 53, protocol: UDP}}
  - {{name: dns-tcp, port: 53, protocol: TCP}}
endpoints:
  - addresses: ["{cp.NODE_IP}"]
    conditions: {{ready: true}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
"""
