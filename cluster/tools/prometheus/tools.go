//go:build tools

// Package tools pins the Prometheus server built for the local cluster's Prometheus pods
// (Debian's prometheus package is built without Kubernetes service discovery).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
