"""The e-commerce shop the operator keeps healthy: product, payment and order services."""
