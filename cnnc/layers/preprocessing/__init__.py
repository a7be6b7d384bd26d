"""Keras-style preprocessing and augmentation layers (channels last).

The random ones transform images only in training (``training=True``, as
``fit`` calls them) and are the identity at inference.
"""
from cnnc.layers.preprocessing.normalization import Normalization
from cnnc.layers.preprocessing.random_brightness import RandomBrightness
from cnnc.layers.preprocessing.random_contrast import RandomContrast
from cnnc.layers.preprocessing.random_crop import RandomCrop
from cnnc.layers.preprocessing.random_erasing import RandomErasing
from cnnc.layers.preprocessing.random_flip import RandomFlip
from cnnc.layers.preprocessing.random_rotation import RandomRotation
from cnnc.layers.preprocessing.random_translation import RandomTranslation
from cnnc.layers.preprocessing.random_zoom import RandomZoom
from cnnc.layers.preprocessing.rescaling import Rescaling

PREPROCESSING_LAYERS = (Normalization, RandomBrightness, RandomContrast, RandomCrop, RandomErasing,
                        RandomFlip,
                        RandomRotation, RandomTranslation, RandomZoom, Rescaling)

__all__ = [cls.__name__ for cls in PREPROCESSING_LAYERS]
