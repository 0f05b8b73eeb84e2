"""StyleGAN-V, reproducible: data, models, training, metrics, launch, tracking and reports."""

__version__ = "0.1.0"
