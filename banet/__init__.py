"""BANet: Boundary-Aware Network for fast and high-accuracy portrait segmentation."""
from .backends import OnnxBackend, TorchBackend, auto_device
from .hub import DEFAULT_MODEL, WeightsError, bundled_models, load_model
from .image_io import ImageLoadError, load_rgb
from .losses import BANetLoss, LossTerms, RefineLoss
from .model import BANet, BANetOutput, count_parameters
from .predictor import GradientField, Prediction, Predictor

__all__ = [
    "BANet", "BANetLoss", "BANetOutput", "DEFAULT_MODEL", "GradientField", "ImageLoadError",
    "LossTerms", "OnnxBackend", "Prediction", "Predictor", "RefineLoss", "TorchBackend",
    "WeightsError", "auto_device", "bundled_models", "count_parameters", "load_model", "load_rgb",
]
