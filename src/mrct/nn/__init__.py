"""Network building blocks shared by several layers (torch only; no operators, no training).

* :class:`UNet` (:mod:`~mrct.nn.unet`): the 2D U-Net of FBPConvNet and the Primal-Dual UNet,
  and the backbone of mrct.synth's :class:`~mrct.synth.SCTUNet`;
* :mod:`~mrct.nn.blocks`: convolution blocks (conv-norm-activation pairs, up-sampling with a
  skip) in 2D or 3D, used by the super-resolution networks of :mod:`mrct.recon.sr`.

A block that one model alone uses stays beside that model; it moves here when a second layer
needs it.
"""

from .blocks import ConvBlock, UpBlock, conv_nd
from .unet import UNet

__all__ = ["UNet", "ConvBlock", "UpBlock", "conv_nd"]
