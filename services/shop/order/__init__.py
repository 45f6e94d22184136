"""Order service (:5001): orchestrates product → payment as a saga, compensating when payment fails."""
