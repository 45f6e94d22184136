"""Payment service (:5003): charges, idempotent under an `Idempotency-Key` header."""
