"""What front ends list: every method with whether it can run here, presets as plain data.

Read-only views for `stylebot methods`, `/methods`, the page's method picker and preset
lists; nothing here is on a job's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.methods import loadable_methods

if TYPE_CHECKING:
    from engine.engine import StyleEngine
    from storage.presets import PresetRecord, PresetSummary


READY, NEEDS_GPU, WEIGHTS_MISSING = "ready", "needs a GPU", "weights missing"


def describe_methods(engine: StyleEngine) -> list[dict[str, Any]]:
    """Every method with its options and whether its no-option default can run here now.

    ``status`` says which of ``READY``, ``NEEDS_GPU`` (a CPU-only server that would refuse
    it) or ``WEIGHTS_MISSING``; ``ready`` is the same as a bool; ``weights`` says where each
    file the defaults need is; ``models`` lists the models usable without a download, for
    methods with a ``model`` option.
    """
    weights = engine.weights
    out = []
    for method in loadable_methods():
        info = method.describe()
        defaults = method.resolve_defaults(method.options.defaults(), weights)
        needed = method.weight_names(defaults)
        info["weights"] = {w: weights.locate(w)[0] for w in needed if w in weights.catalogue}
        models = method.available_models(weights, engine.settings)
        if models is not None:
            info["models"] = models
        if engine.needs_missing_gpu(method):
            info["status"] = NEEDS_GPU
        elif any(where == "missing" for where in info["weights"].values()):
            info["status"] = WEIGHTS_MISSING
        else:
            info["status"] = READY
        info["ready"] = info["status"] == READY
        out.append(info)
    return out


def preset_data(record: PresetRecord | PresetSummary) -> dict[str, Any]:
    """A preset (full record or listing summary) as plain JSON-able data, for every front end."""
    styles = getattr(record, "styles", None)
    stamp = lambda t: t.isoformat() if t is not None else None  # noqa: E731
    return {"name": record.name, "method": record.method, "options": record.options,
            "style_count": len(styles) if styles is not None else record.style_count,
            "style_files": (None if styles is None else
                            [{"filename": s.filename, "weight": s.weight, "bytes": len(s.data)}
                             for s in styles]),
            "created_at": stamp(record.created_at), "last_used_at": stamp(record.last_used_at),
            "use_count": record.use_count}
