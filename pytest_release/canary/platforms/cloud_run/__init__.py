"""The Cloud Run platform: revisions of one Cloud Run service (Admin API v2), with the
service's own traffic split as the router."""
