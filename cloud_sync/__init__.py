"""The asynchronous S3 mirror (outbox, workers, retries, dead letters); built in issue 8."""
