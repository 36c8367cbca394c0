"""Trainers behind `stylebot train METHOD`, one module each, imported lazily.

Each module defines ``add_arguments(parser)`` (its CLI flags) and ``run(args, settings)``
returning a process exit code. Training reports progress with tqdm, writes checkpoints
it can resume from, and saves the result where its method finds it. Their training images
(finding, decoding, batching) live side by side in ``engine.training.images``.
"""

from __future__ import annotations

TRAINER_PATHS: dict[str, str] = {
    "fast": "engine.training.fast",
    "adain": "engine.training.adain",
}
