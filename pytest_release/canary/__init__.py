"""The canary engine: platforms, traffic routers, sampling, judging, promotion, rollback."""
