"""The trainer's process: `python -m convassist.worker.training JOB_ID` trains one TrainingJob with
ml.train's recipe, reporting progress and the result to the database (services.training). The worker
runs it as a child, so generation keeps its process and model."""

from __future__ import annotations

import logging
import os

from ml.train import TrainResult, train_lora

log = logging.getLogger("convassist.worker.training")


def main(job_id: str) -> int:
    """Train the TrainingJob `job_id` (run by the worker as a child process)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.nice(10)  # generation in the worker comes first
    from convassist.services import training

    parent = os.getppid()
    spec = training.begin_training(job_id)
    if spec is None:
        return 0  # not queued any more (cancelled, or already handled)

    def on_progress(step: int, total: int, result: TrainResult) -> None:
        if os.getppid() != parent:  # the worker died: stop, the next worker marks the job failed
            raise SystemExit(3)
        training.report_progress(job_id, step, total, result)

    try:
        result = train_lora(spec.gguf_path, spec.samples, spec.config, spec.adapter_path, on_progress)
    except SystemExit:
        raise
    except Exception as exc:  # the reason goes to the job, the traceback to the worker's log
        log.error("training failed job=%s type=%s", job_id, type(exc).__name__)  # no message: it may quote data
        training.fail_job(job_id, f"{type(exc).__name__}: {exc}")
        return 1
    training.complete_job(job_id, result)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1]))
