"""The pipeline across CI jobs: the GitHub Actions workflow planned from the stages
(:mod:`.workflow`, :mod:`.matrix`) and written as YAML (:mod:`.file`), a gate's tests split
into deterministic shards (:mod:`.sharding`), and the records of jobs merged into one
(:mod:`.shards`: ``merge-ledgers``, ``merge-shards``)."""
