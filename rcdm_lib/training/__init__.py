"""Training RCDM: the loop, EMA, checkpoints, distributed setup (torchrun)."""
from rcdm_lib.training.config import DiffusionConfig, TrainConfig
from rcdm_lib.training.data import EncoderSource, ImageSource, SlotFeatureSource
from rcdm_lib.training.distributed import DistInfo, init_distributed
from rcdm_lib.training.loop import TrainingDiverged, TrainResult, train_rcdm

__all__ = ["DiffusionConfig", "TrainConfig", "EncoderSource", "ImageSource", "SlotFeatureSource", "DistInfo",
           "init_distributed", "TrainingDiverged", "TrainResult", "train_rcdm"]
