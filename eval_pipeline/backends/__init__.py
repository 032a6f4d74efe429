"""Model backends: see base.py for the interface."""
from eval_pipeline.backends.base import (Backend, GenerateRequest, ScoreRequest, ScoreResult,  # noqa: F401
                                         get_backend)
