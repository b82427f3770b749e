"""The trainer's process: `python -m convassist.worker.training JOB_ID` trains one TrainingJob with
ml.train's recipe, then judges the adapter against the base model on the provider's held-out replies
(ml.judge), reporting each stage, the progress and the result to the database (services.training).
The worker runs it as a child, so generation keeps its process and model."""

from __future__ import annotations

import logging
import os

from ml.train import TrainResult, split_samples, train_lora

log = logging.getLogger("convassist.worker.training")

# progress: loading the model is the first few percent, so the bar moves from the start; the steps
# fill most of it; exporting, checking and judging the adapter the rest
LOADED, TRAINED = 5.0, 90.0


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
        training.report_progress(job_id, LOADED + (TRAINED - LOADED) * step / max(total, 1), result,
                                 stage="learning")

    try:
        result = train_lora(spec.gguf_path, spec.samples, spec.config, spec.adapter_path, on_progress)
        training.report_stage(job_id, "judging", TRAINED + 2)
    except SystemExit:
        raise
    except Exception as exc:  # the reason goes to the job, the traceback to the worker's log
        log.error("training failed job=%s type=%s", job_id, type(exc).__name__)  # no message: it may quote data
        training.fail_job(job_id, f"{type(exc).__name__}: {exc}")
        return 1
    try:
        judgement = _judge(spec, result)
    except Exception as exc:  # the adapter is good (exported and checked): it stays, without a verdict
        log.error("judging failed job=%s type=%s", job_id, type(exc).__name__)
        judgement = None
    finally:
        if result.held_out_adapter != spec.adapter_path:  # only the judge reads it
            result.held_out_adapter.unlink(missing_ok=True)
    training.complete_job(job_id, result, judgement)
    return 0


def _judge(spec, result: TrainResult):
    """Base vs the new voice on the held-out replies, through llama.cpp as suggestions are made: scored
    with the adapter that never saw them (after a refit the served one has; the judge scores the recipe
    on replies it did not learn, ml.train)."""
    from convassist.settings import get_settings
    from ml.engine import LlamaEngine
    from ml.judge import judge
    from ml.registry import ResolvedModel

    settings = get_settings()
    engine = LlamaEngine.load(ResolvedModel("judge", spec.gguf_path, (str(spec.gguf_path),)),
                              context_size=settings.ml_service_context_size, gpu_layers=0,
                              threads=settings.ml_service_train_threads, sequences=1)  # one reply at a time
    if not engine.status.loaded:
        raise RuntimeError(f"the model could not be loaded to judge the adapter: {engine.status.error}")
    learned, held_out = split_samples(spec.samples, spec.config.eval_fraction, spec.config.seed)
    verdict = judge(engine, result.held_out_adapter, held_out, [s.reply for s in learned])
    log.info("judged judged=%d base_chrf=%.1f voice_chrf=%.1f base_invented=%d voice_invented=%d", verdict.judged,
             verdict.base_chrf, verdict.voice_chrf, verdict.base_invented, verdict.voice_invented)
    return verdict


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1]))
