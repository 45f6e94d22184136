//go:build tools

// Package tools pins Jaeger v2 (cmd/jaeger of module v1.76.0), the trace store.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
