"""Evidence sources of the canary judge besides the sampler: the router's own counters
(:mod:`.router_stats`)."""
