"""inception3's configuration: the original recipe's constants with their sources (recipe.py), the
config records (records.py), presets (presets.py), and the one table that reads and checks every
key's value (check.py). Every public name is importable from `inception3.config`.
"""

from inception3.config.check import (
    FlatKey,
    Valid,
    check_fields,
    comma_list,
    convert,
    flat_keys,
    from_flat,
    knob,
    known_key,
    shown,
    table_rows,
    to_flat,
)
from inception3.config.presets import PRESETS, describe_presets, with_preset
from inception3.config.recipe import *  # noqa: F403 (every constant of the recipe, by name)
from inception3.config.records import (
    EVAL_PREPROCESSINGS,
    WEIGHTS_FORMATS,
    AugmentConfig,
    BuildConfig,
    Device,
    EvalConfig,
    EvalPreprocessing,
    ModelConfig,
    Optimizer,
    Precision,
    Schedule,
    TrainConfig,
    WeightsFormat,
)

# The records, the table and the presets; the recipe's constants come in by name above.
__all__ = [
    "FlatKey",
    "Valid",
    "check_fields",
    "comma_list",
    "convert",
    "flat_keys",
    "from_flat",
    "knob",
    "known_key",
    "shown",
    "table_rows",
    "to_flat",
    "EVAL_PREPROCESSINGS",
    "WEIGHTS_FORMATS",
    "AugmentConfig",
    "BuildConfig",
    "Device",
    "EvalConfig",
    "EvalPreprocessing",
    "ModelConfig",
    "Optimizer",
    "Precision",
    "Schedule",
    "TrainConfig",
    "WeightsFormat",
    "PRESETS",
    "describe_presets",
    "with_preset",
]
