"""Pieces every shop service shares: settings, logging, metrics, tracing, outbound calls, storage, faults."""
