"""Keras-style layers (channels-last).

Every layer keeps the contract of :class:`cnnc.layers.Layer`; ``serialize``
and ``deserialize`` turn a layer into ``{"class_name", "config"}`` and back
(the architecture part of the save format).
"""
from cnnc.layers.base import Layer, Node, SymbolicTensor, Weight  # noqa: F401
from cnnc.layers.input_layer import Input, InputLayer
from cnnc.layers.dense import Dense
from cnnc.layers.conv1d import Conv1D
from cnnc.layers.conv2d import Conv2D
from cnnc.layers.depthwise_conv2d import DepthwiseConv2D
from cnnc.layers.conv2d_transpose import Conv2DTranspose
from cnnc.layers.pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D,
                                 MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from cnnc.layers.global_pooling import (GlobalAveragePooling1D, GlobalAveragePooling2D,
                                        GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                                        GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D)
from cnnc.layers.flatten import Flatten
from cnnc.layers.reshape import Reshape
from cnnc.layers.dropout import Dropout
from cnnc.layers.batch_normalization import BatchNormalization
from cnnc.layers.sync_batch_normalization import SyncBatchNormalization
from cnnc.layers.activation import Activation
from cnnc.layers.relu import ReLU
from cnnc.layers.leaky_relu import LeakyReLU
from cnnc.layers.elu import ELU
from cnnc.layers.softmax import Softmax
from cnnc.layers.merge import (Add, Average, Concatenate, Divide, Maximum, Minimum, Multiply,
                               Subtract, add, average, concatenate, maximum, minimum, multiply,
                               subtract)
from cnnc.layers.lambda_layer import Lambda
from cnnc.layers.op_layer import OpLayer
from cnnc.layers.prelu import PReLU
from cnnc.layers.clip import Clip, HardSigmoid
from cnnc.layers.constant_arithmetic import ConstantArithmetic
from cnnc.layers.pad import Pad
from cnnc.layers.zero_padding2d import ZeroPadding2D
from cnnc.layers.cropping2d import Cropping2D
from cnnc.layers.upsampling2d import UpSampling2D
from cnnc.layers.sequence_resizing import Cropping1D, UpSampling1D, ZeroPadding1D
from cnnc.layers.spatial_dropout import SpatialDropout1D, SpatialDropout2D
from cnnc.layers.permute import Permute
from cnnc.layers.separable_conv1d import SeparableConv1D
from cnnc.layers.separable_conv2d import SeparableConv2D
from cnnc.layers.embedding import Embedding
from cnnc.layers.masking import Masking
from cnnc.layers.layer_normalization import LayerNormalization
from cnnc.layers.group_normalization import GroupNormalization
from cnnc.layers.affine_grid_generator import AffineGridGenerator
from cnnc.layers.bilinear_sampler import BilinearSampler
from cnnc.layers.preprocessing import *  # noqa: F401,F403
from cnnc.layers.preprocessing import PREPROCESSING_LAYERS

Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D

_LAYER_CLASSES = {cls.__name__: cls for cls in (
    InputLayer, Dense, Conv1D, Conv2D, DepthwiseConv2D, Conv2DTranspose, AveragePooling1D,
    AveragePooling2D, MaxPooling1D, MaxPooling2D, GlobalAveragePooling1D,
    GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, Flatten, Reshape, Dropout,
    BatchNormalization, SyncBatchNormalization, Activation, ReLU, LeakyReLU, ELU, Softmax, Add, Subtract, Multiply,
    Average, Maximum, Minimum, Concatenate, ZeroPadding2D, Cropping2D, UpSampling2D,
    ZeroPadding1D, Cropping1D, UpSampling1D, SpatialDropout1D, SpatialDropout2D, Permute,
    Lambda, OpLayer, Divide, PReLU, Clip, HardSigmoid, ConstantArithmetic, Pad,
    SeparableConv1D, SeparableConv2D, Embedding, Masking, LayerNormalization, GroupNormalization,
    AffineGridGenerator, BilinearSampler)}
_LAYER_CLASSES.update({cls.__name__: cls for cls in PREPROCESSING_LAYERS})


def register(cls):
    """Make a custom Layer subclass known to :func:`deserialize` (and so to
    model loading); usable as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"only Layer subclasses can be registered, got {cls!r}")
    _LAYER_CLASSES[cls.__name__] = cls
    return cls


def serialize(layer):
    """``{"class_name": ..., "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, custom_objects=None):
    """A new (unbuilt) layer from :func:`serialize`'s output."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a layer config must be a dict with 'class_name', got {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown layer class {name!r}; register custom layers with "
                         f"cnnc.layers.register or pass custom_objects")
    if getattr(cls, "_needs_custom_objects", False):
        return cls.from_config(dict(config.get("config") or {}), custom_objects)
    return cls.from_config(dict(config.get("config") or {}))
