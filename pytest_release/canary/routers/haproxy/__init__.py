"""HAProxy as the traffic router, changed live over its runtime API."""
