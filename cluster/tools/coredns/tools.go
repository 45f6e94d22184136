//go:build tools

// Package tools pins CoreDNS for the local cluster's DNS (its own module: its
// dependency graph is kept apart from Kubernetes').
package tools

import _ "github.com/coredns/coredns"
