"""Product service (:5002): the catalogue and its stock, with idempotent reservations for orders."""
