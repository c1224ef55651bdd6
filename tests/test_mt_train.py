"""MT training: kill -9 + resume loses at most one checkpoint interval and ends where an uninterrupted run does;
the same command runs under torchrun (2 CPU processes, gloo); a style model file comes out."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.engines.mt.model_file import load_model
from impasto.engines.mt.train import checkpoint_path, load_checkpoint

STEP_RE = re.compile(r"^step (\d+)/(\d+)", re.M)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four small photos and a 'painting' from scikit-image samples."""
    from skimage import data as skdata
    root = tmp_path_factory.mktemp("mt_train")
    (root / "photos").mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).resize((96, 80)).save(root / "photos" / f"{name}.png")
    Image.fromarray(skdata.coffee()).save(root / "painting.png")
    return root


def _args(data, name, steps, every, work, extra=()):
    return ["train", "--style", str(data / "painting.png"), "--content-dir", str(data / "photos"), "--name", name,
            "--net", "tiny", "--crop", "64", "--style-sizes", "64,96,128", "--steps", str(steps), "--batch", "2",
            "--checkpoint-every", str(every), "--log-every", "1", "--work-dir", str(work),
            "--output", str(work / f"{name}.safetensors"), *extra]


def _env(tmp):
    env = dict(os.environ, IMPASTO_DATA_DIR=str(tmp / "userdata"), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def test_kill_9_then_resume_matches_uninterrupted_run(data, tmp_path):
    steps, every = 60, 4
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "impasto", *_args(data, "k", steps, every, work)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path))
    seen, lines = 0, []
    deadline = time.time() + 300
    while seen < 11 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = STEP_RE.match(line)
        if m:
            seen = int(m.group(1))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 11 <= seen < steps, "".join(lines[-20:])
    ckpt_file = work / "k" / "checkpoint.pt"
    ckpt = load_checkpoint(ckpt_file)
    assert seen - every <= ckpt["step"] <= seen          # at most one interval lost
    assert not ckpt_file.with_suffix(".tmp").exists() or ckpt["step"] > 0

    resumed = subprocess.run([sys.executable, "-m", "impasto", *_args(data, "k", steps, every, work, ["--resume"])],
                             capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    first = int(STEP_RE.search(resumed.stdout).group(1))
    assert first == ckpt["step"] + 1                     # continued, not restarted

    fresh_work = tmp_path / "fresh"
    fresh = subprocess.run([sys.executable, "-m", "impasto", *_args(data, "k", steps, every, fresh_work)],
                           capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    a, _ = load_model(work / "k.safetensors")
    b, _ = load_model(fresh_work / "k.safetensors")
    diffs = [(a_v - b_v).abs().max().item() for a_v, b_v in zip(a.state_dict().values(), b.state_dict().values())]
    assert max(diffs) < 1e-2, max(diffs)                 # same data, same optimizer state: same weights (fp16)
    # and training moved the weights away from their initial values
    torch.manual_seed(0)
    from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
    init = MultimodalTransferNet(MTConfig.tiny())
    assert max((p - q).abs().max().item() for p, q in zip(init.state_dict().values(), a.state_dict().values())) > 1e-2


def test_torchrun_two_cpu_processes_gloo(data, tmp_path):
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "impasto", "-v", *_args(data, "ddp", 8, 4, work)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "on 2 process(es)" in r.stdout + r.stderr
    assert load_checkpoint(checkpoint_path_for(work, "ddp"))["step"] == 8
    net, meta = load_model(work / "ddp.safetensors")
    assert meta.name == "ddp" and meta.training["steps_done"] == 8


def checkpoint_path_for(work: Path, name: str) -> Path:
    return work / name / "checkpoint.pt"


def test_style_weight_per_level_and_content_layer_reach_the_model_file(data, tmp_path, monkeypatch, capsys):
    """--style-weight B means (B, 0.4B, B), B1,B2,B3 is taken as given; --content-layer is trained with and
    recorded in the model's training metadata; a bad value is a clear error."""
    from impasto.cli import main as cli_main
    from impasto.engines.mt.model_file import read_metadata
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path / "userdata"))
    torch.set_num_threads(1)
    out = tmp_path / "w"
    assert cli_main(_args(data, "lv", 2, 10, out, ("--style-weight", "2", "--content-layer", "relu2_2",
                                                  "--no-progress"))) == 0
    training = read_metadata(out / "lv.safetensors").training
    assert training["style_weights"] == pytest.approx([2.0, 0.8, 2.0])
    assert training["content_layer"] == "relu2_2"
    assert cli_main(_args(data, "lv3", 2, 10, out, ("--style-weight", "3,1,0.5", "--no-progress"))) == 0
    training = read_metadata(out / "lv3.safetensors").training
    assert training["style_weights"] == [3.0, 1.0, 0.5] and training["content_layer"] == "relu4_2"
    assert cli_main(_args(data, "bad", 2, 10, out, ("--style-weight", "1,2",))) == 2
    assert "--style-weight must be B or B1,B2,B3" in capsys.readouterr().err


def test_checkpoint_from_before_content_layer_setting_loads_as_relu4_2(data, tmp_path):
    from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
    from impasto.engines.mt.train import TrainConfig, net_from_checkpoint, save_checkpoint
    cfg = TrainConfig(name="old", style_paths=(str(data / "painting.png"),) * 3, content_dir=str(data / "photos"),
                      net=MTConfig.tiny().to_dict(), content_layer="relu2_2")
    net = MultimodalTransferNet(MTConfig.tiny())
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, 3, net, torch.optim.Adam(net.parameters()), "style", cfg)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["content_layer"]                 # what an older checkpoint looked like
    torch.save(ckpt, path)
    _, loaded, step = net_from_checkpoint(path)
    assert loaded.content_layer == "relu4_2" and step == 3


def _trained_tiny(data, tmp_path, monkeypatch, name="src", painting="painting.png"):
    """A tiny style model file made by the CLI (2 steps), and its net."""
    from impasto.cli import main as cli_main
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path / "userdata"))
    torch.set_num_threads(1)
    args = _args(data, name, 2, 10, tmp_path / "w", ("--no-progress",))
    args[args.index("--style") + 1] = str(data / painting)
    assert cli_main(args) == 0
    return tmp_path / "w" / f"{name}.safetensors"


def test_init_from_starts_every_subnet_from_the_model_and_a_resume_keeps_it(data, tmp_path, monkeypatch):
    """--init-from FILE: the upper levels (which the style phase does not train) are the source model's, not random;
    the style subnet moved from the source's weights; a resume from a style-phase checkpoint keeps the source's
    upper levels too.  Without --init-from they are the seeded random (zero-output) initialisation."""
    from impasto.cli import main as cli_main
    from impasto.engines.mt.train import net_from_checkpoint
    src_file = _trained_tiny(data, tmp_path, monkeypatch)
    src, _ = load_model(src_file)
    with torch.no_grad():                                   # make the source's upper levels unmistakable
        for p in list(src.enhance.parameters()) + list(src.refine.parameters()):
            p.add_(0.25)
    from impasto.engines.mt.model_file import read_metadata, save_model
    marked = tmp_path / "marked.safetensors"
    save_model(marked, src, read_metadata(src_file))
    src, _ = load_model(marked)                             # fp16-rounded, as training will read it
    work = tmp_path / "warm"
    assert cli_main(_args(data, "warm", 12, 2, work, ("--init-from", str(marked), "--no-progress",
                                                      "--style-steps", "8", "--hier-steps", "4"))) == 0
    ckpt_net, cfg, step = net_from_checkpoint(work / "warm" / "checkpoint.pt")
    assert cfg.init_from == str(marked) and step == 12
    final, _ = load_model(work / "warm.safetensors")
    # the style subnet trained from the source's weights: close to them after 8 small steps, but moved
    s_src = torch.cat([p.flatten() for p in src.style.parameters()])
    s_out = torch.cat([p.flatten() for p in final.style.parameters()])
    assert 0 < (s_out - s_src).abs().max() < 0.05 < s_src.abs().max()

    # interrupted in the style phase, then resumed: the upper levels still come from the source
    from impasto.engines.mt.train import TrainConfig, train
    cfg2 = TrainConfig(**{**cfg.__dict__, "name": "warm2", "out_dir": str(tmp_path / "warm2"), "style_steps": 6,
                          "hier_steps": 0})
    train(cfg2, device=torch.device("cpu"), stop_after=2)
    resumed = train(cfg2, resume=True, device=torch.device("cpu"))
    for a, b in zip(list(resumed.enhance.parameters()) + list(resumed.refine.parameters()),
                    list(src.enhance.parameters()) + list(src.refine.parameters())):
        assert torch.equal(a.detach().cpu(), b.detach())
    scratch = train(TrainConfig(**{**cfg2.__dict__, "name": "cold", "init_from": "",
                                   "out_dir": str(tmp_path / "cold")}), device=torch.device("cpu"))
    assert all((p == 0).all() for p in scratch.refine.out.parameters())   # the random start's zero last conv


def test_init_from_spends_every_step_on_the_whole_stack(data, tmp_path, monkeypatch):
    """With --init-from the default schedule has no style phase (train.warm_schedule); --steps N is N hierarchical
    steps there, while a from-scratch --steps N keeps the 3:1 split."""
    from impasto.cli import main as cli_main
    from impasto.engines.mt.train import net_from_checkpoint, split_steps, warm_schedule
    src_file = _trained_tiny(data, tmp_path, monkeypatch)
    assert warm_schedule()["style_steps"] == 0 < warm_schedule()["hier_steps"]
    work = tmp_path / "warm"
    assert cli_main(_args(data, "warm", 4, 2, work, ("--init-from", str(src_file), "--no-progress"))) == 0
    _, cfg, step = net_from_checkpoint(work / "warm" / "checkpoint.pt")
    assert (cfg.style_steps, cfg.hier_steps, step) == (0, 4, 4)
    assert split_steps(4) == (3, 1)


def test_init_from_errors_and_nearest_style(data, tmp_path, monkeypatch):
    """A missing style, and a model of other widths, are clear errors; 'nearest' picks the installed style whose
    stored painting Grams are closest to the new painting's."""
    from impasto.cli import main as cli_main
    from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
    from impasto.engines.mt.train import painting_grams
    from impasto.engines.mt.warm_start import WarmStartError, init_from_model, nearest_style
    from impasto.engines.mt.styles import find_style
    from skimage import data as skdata
    Image.fromarray(skdata.astronaut()).save(data / "other_painting.png")
    coffee = _trained_tiny(data, tmp_path, monkeypatch, "coffee_style")
    astro = _trained_tiny(data, tmp_path, monkeypatch, "astro_style", "other_painting.png")
    assert cli_main(_args(data, "x", 2, 10, tmp_path / "e", ("--init-from", "no_such_style"))) == 2
    with pytest.raises(WarmStartError, match="network widths"):
        init_from_model(MultimodalTransferNet(MTConfig()), coffee)
    candidates = [find_style(str(coffee)), find_style(str(astro))]
    for painting, want in (("painting.png", "coffee_style"), ("other_painting.png", "astro_style")):
        grams = painting_grams(data / painting, 128)            # the tiny models store 128-px Grams
        info, distance = nearest_style(grams, candidates)
        assert info.name == want and distance >= 0
    with pytest.raises(WarmStartError, match="no installed style"):
        nearest_style(grams, [])

    # the CLI: 'nearest' among the installed styles, recorded by name in the new model's metadata
    from impasto.engines.mt.model_file import read_metadata
    from impasto.engines.mt.styles import user_styles_dir
    user_styles_dir().mkdir(parents=True, exist_ok=True)
    for f in (coffee, astro):
        (user_styles_dir() / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("IMPASTO_STYLES_DIR", str(tmp_path / "no_shipped_styles"))
    out = tmp_path / "n"
    assert cli_main(_args(data, "near", 2, 10, out, ("--init-from", "nearest", "--no-progress"))) == 0
    assert read_metadata(out / "near.safetensors").training["init_from"] in ("coffee_style", "astro_style")
