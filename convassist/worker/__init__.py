"""The worker process (`python -m convassist.worker`): arq jobs that glue the `ml` library to Redis
and the database — reply suggestions (replies) and LoRA training (training) — and the registry every
worker keeps itself in (status)."""
