"""benchmarks.yaml: loading, validation and command-line overrides.

Every mistake is a :class:`ConfigError` of one line that names the key (``tasks.gender.models``)
and, where there is a closed set, the valid choices. Schema::

    store: stores/default        # store folder (--store overrides)
    out: results                 # parent of the timestamped run folder (--out DIR: the folder)
    device: auto                 # cpu | cuda | cuda:N | auto
    seeds: 5                     # N (0..N-1) or a list of ints (--seeds N overrides)
    selection: cv                # cv: grouped K-fold inside the training data, then refit;
                                 # validation: the split's one validation part (bench/selection.py)
    folds: 5                     # K of the inner cross-validation
    validation_fraction: 0.2     # of the training speakers (gender) / sessions (speaker)
    test_fraction: 0.25          # of the speakers (gender) / each speaker's sessions (speaker)
    bootstrap: 1000              # resamples for the per-seed 95% CIs (0: none)
    tasks:
      gender:                    # gender | speaker | verification
        subsets: [dev-clean]     # optional: only store rows of these subsets
        weighting: speaker       # speaker | class | none (default: speaker for gender,
                                 # class for speaker; bench/weights.py)
        features: [mfcc]         # a grid entry: every view x every model...
        models: [majority, logreg]
        grid:                    # ...or several entries, when views of different kinds
          - {features: [mfcc-frames], models: [cnn]}    # need different models
          - features: [wav2vec2:all]
            models: [xgboost]
            search: {xgboost: {max_depth: [3]}}   # this entry's grid for a model (optional)
    models:                      # optional parameters per model (checked against its defaults)
      mlp: {hidden_sizes: [256], max_epochs: 50}
      xgboost:
        search: {max_depth: [2, 4, 6]}   # the grid model selection tries (replaces the model's
                                         # default grid; {} tries only the parameters above)
      hf-finetune:
        selection: validation            # per-model selection method
        epochs: 3
        cpu: {epochs: 1, max_train_chunks: 256, seeds: 2}   # used instead on the CPU; seeds: N
                                         # runs this model on the first N seeds only

A model that cannot take a view's kind (cnn on the ``mfcc`` vector) is an error naming both:
a grid entry must be valid as a whole, nothing is skipped silently.

Layout: ``types`` (Config, TaskConfig, GridEntry, ModelPlan), ``loading`` (the file, the
top-level keys, the task sections), ``entries`` (grid entries and model sections), ``overrides``
(command-line values and filters); the value checks and ConfigError: bench/config_values.py.
"""

from __future__ import annotations

from bench.config.entries import GRID_KEYS
from bench.config.loading import TASK_KEYS, TOP_KEYS, load, parse
from bench.config.overrides import with_overrides
from bench.config.types import (
    DEVICE_SECTIONS,
    MODEL_KEYS,
    Config,
    GridEntry,
    ModelPlan,
    TaskConfig,
    device_kind,
)
from bench.config_values import ConfigError

__all__ = [
    "DEVICE_SECTIONS", "GRID_KEYS", "MODEL_KEYS", "TASK_KEYS", "TOP_KEYS", "Config", "ConfigError",
    "GridEntry", "ModelPlan", "TaskConfig", "device_kind", "load", "parse", "with_overrides",
]
