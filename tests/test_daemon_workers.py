"""Several workers (issue 18): two CPU workers share the queue, and a tiled MT job borrows the idle one's device.

A real daemon with ``--device cpu --device cpu`` and the weight-free test engines (tests/support/serve.py); the
tiled-MT jobs use a tiny random MT network saved as a user style.  The ``DevicePool`` rules (a lent device comes
back when its own worker gets a job, one tile at most) are checked on the pool and on an in-process tiled run.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from impasto.daemon.devices import DevicePool, share_cpu_threads, worker_names
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(180)
CPU = torch.device("cpu")
STYLE = "workers_tiny"


def tiny_net():
    from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
    torch.manual_seed(0)
    net = MultimodalTransferNet(MTConfig.tiny()).eval()
    with torch.no_grad():
        for p in net.parameters():       # random everywhere, as tests/test_tiling_mt.py does
            p.normal_(0, 0.3) if p.dim() > 1 else p.normal_(0, 0.1)
    return net


def save_style(folder):
    from impasto.engines.mt.model_file import StyleMetadata, save_model
    folder.mkdir(parents=True, exist_ok=True)
    save_model(folder / f"{STYLE}.safetensors", tiny_net(), StyleMetadata(name=STYLE, title="T", artist="", year=""))


def save_photos(folder):
    from PIL import Image
    from skimage import data as skdata
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).resize((96, 80)).save(folder / f"{name}.png")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    save_style(root / "data" / "styles")                     # DaemonProcess sets IMPASTO_DATA_DIR=<root>/data
    save_photos(root / "photos")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPASTO_PRECISION", "fp32")
        mp.setenv("OMP_NUM_THREADS", "2")                      # two threads: one per CPU worker
        d = DaemonProcess(root, "--device", "cpu", "--device", "cpu", "--train-photos", str(root / "photos")).start()
    try:
        yield d
        assert d.alive(), d.log()
    finally:
        d.stop()


def rgba(w: int, h: int, seed: int) -> tuple[ImageBuffer, np.ndarray]:
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    return ImageBuffer(w, h, 4, "u8", memoryview(arr).cast("B")), arr


def test_worker_names_and_cpu_threads():
    assert worker_names(["cpu"]) == ["cpu"]
    assert worker_names(["cpu", "cpu"]) == ["cpu#0", "cpu#1"]
    assert worker_names(["cuda:0", "cuda:1", "cuda:1"]) == ["cuda:0", "cuda:1#0", "cuda:1#1"]
    assert share_cpu_threads(["cpu"]) is None and share_cpu_threads(["cuda:0", "cpu"]) is None   # untouched


def test_two_workers_eight_jobs_from_four_clients(daemon):
    hello = daemon.client().hello()
    assert hello["devices"] == ["cpu", "cpu"]
    done: dict[tuple[int, int], tuple[bool, str]] = {}
    errors: list[str] = []

    def run(ci: int) -> None:
        try:
            with daemon.client() as c:
                jobs = []
                for k, engine in enumerate(("sleep", "invert")):
                    img, arr = rgba(24 + ci, 20 + k, seed=10 * ci + k)
                    want = arr.copy()
                    if engine == "invert":
                        want[..., :3] = 255 - want[..., :3]
                    opts = StylizeOptions(engine=engine, size=24 + ci, steps=8, learning_rate=0.05)
                    jobs.append((k, want, c.stylize(img, opts)))
                for k, want, job in jobs:
                    job.wait(timeout=60)
                    ok = job.result is not None and bytes(job.result.data) == want.tobytes()
                    done[(ci, k)] = (ok, job.info["worker"] if job.info else "")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len(done) == 8 and all(ok for ok, _ in done.values()), done
    assert {w for _, w in done.values()} == {"cpu#0", "cpu#1"}          # both workers ran jobs

    st = daemon.client().status()
    workers = {w["name"]: w for w in st["workers"]}
    assert set(workers) == {"cpu#0", "cpu#1"} and all(w["device"] == "cpu" for w in workers.values())
    assert sum(w["jobs_run"] for w in workers.values()) >= 8
    # both busy at once: a sleep job on one worker ran while a job on the other did
    ran = [j for j in st["recent"] if j["engine"] == "sleep" and j["state"] == "done"]
    assert any(a["worker"] != b["worker"] and a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
               for a in ran for b in st["recent"] if b["state"] == "done")


def reference_mt(root, arr: np.ndarray, options: StylizeOptions) -> np.ndarray:
    """The same MT job in this process, on one device, one thread (as each daemon worker runs)."""
    from impasto import engines
    from impasto.daemon.convert import PixelFormat, buffer_to_tensor, tensor_to_array
    img = ImageBuffer(arr.shape[1], arr.shape[0], 4, "u8", memoryview(arr).cast("B"))
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPASTO_DATA_DIR", str(root / "data"))
        mp.setenv("IMPASTO_PRECISION", "fp32")
        torch.set_num_threads(1)
        try:
            out = engines.stylize(buffer_to_tensor(img), None, options, device=CPU)
        finally:
            torch.set_num_threads(threads)
    return tensor_to_array(out, PixelFormat.of(img))


def test_a_tiled_mt_job_computes_tiles_on_the_idle_workers_device(daemon):
    c = daemon.client()
    img, arr = rgba(800, 240, seed=7)        # above 724 px: the level plan has a refine level to tile
    opts = StylizeOptions(engine="mt", style_name=STYLE, size=800, tile_size=128)
    job = c.stylize(img, opts).wait(timeout=120)
    assert job.result is not None, job.error
    by = job.info["tiles_by_device"]
    assert set(by) == {"cpu#0", "cpu#1"} and by[job.info["worker"]] >= 1      # both devices computed tiles
    want = reference_mt(daemon.runtime_dir, arr, opts)
    assert bytes(job.result.data) == want.tobytes()                          # as on one device, bit for bit


def test_a_job_for_the_lending_worker_runs_while_a_tiled_job_borrows(daemon):
    """Whichever way the timing falls (the other worker lent or not when the second job comes), both results are
    right and every lent device is back afterwards."""
    c = daemon.client()
    big, big_arr = rgba(768, 320, seed=8)
    small, small_arr = rgba(20, 16, seed=9)
    mt = c.stylize(big, StylizeOptions(engine="mt", style_name=STYLE, size=768, tile_size=128))
    inv = c.stylize(small, StylizeOptions(engine="invert", size=20))
    assert inv.wait(timeout=60).result is not None
    want = small_arr.copy()
    want[..., :3] = 255 - want[..., :3]
    assert bytes(inv.result.data) == want.tobytes()
    assert mt.wait(timeout=120).result is not None, mt.error
    assert set(mt.info["tiles_by_device"]) <= {"cpu#0", "cpu#1"}
    ref = reference_mt(daemon.runtime_dir, big_arr, StylizeOptions(engine="mt", style_name=STYLE, size=768,
                                                                      tile_size=128))
    assert bytes(mt.result.data) == ref.tobytes()
    assert all(w["state"] == "idle" and w["lent_to"] is None for w in c.status()["workers"])


def test_training_holds_one_worker_and_interactive_jobs_still_run(daemon):
    """A training job keeps one worker; an interactive job goes to the other (idle) worker, and while that one is
    busy too, the training worker runs it between two training steps: no job waits for a training to end."""
    from impasto_protocol.messages import ProgressEvent
    c = daemon.client()
    painting, _ = rgba(160, 120, seed=11)
    train = c.train(painting, "workers_long", steps=5000, content_dir=str(daemon.runtime_dir / "photos"), net="tiny",
                    crop=64, style_sizes=[64, 96, 128], batch=2, checkpoint_every=10000)
    for ev in train.events(timeout=120):
        if isinstance(ev, ProgressEvent) and " step " in ev.stage:
            break                                                   # training steps are running
    trainer = next(j["worker"] for j in c.status()["running"] if j["job_id"] == train.id)
    other = ({"cpu#0", "cpu#1"} - {trainer}).pop()
    img, arr = rgba(20, 16, seed=12)
    quick = c.stylize(img, StylizeOptions(engine="identity", size=20)).wait(timeout=60)
    assert bytes(quick.result.data) == arr.tobytes() and quick.info["worker"] == other     # the idle worker
    blocker = c.stylize(img, StylizeOptions(engine="sleep", size=20, steps=2000, learning_rate=0.01))
    for ev in blocker.events(timeout=60):
        if isinstance(ev, ProgressEvent):
            break                                                   # the other worker is busy now
    between = c.stylize(img, StylizeOptions(engine="identity", size=20)).wait(timeout=60)
    assert bytes(between.result.data) == arr.tobytes() and between.info["worker"] == trainer
    assert not train.done and not blocker.done
    blocker.cancel()
    train.cancel()
    assert blocker.wait(timeout=60).cancelled and train.wait(timeout=120).cancelled


# -- the pool ------------------------------------------------------------------------------------------------------
def test_a_lent_device_comes_back_when_its_worker_gets_a_job():
    pool = DevicePool([("cpu#0", "cpu"), ("cpu#1", "cpu")])
    pool.claim("cpu#0")                                   # worker 0 runs a tiled job ...
    loan = pool.borrow("cpu#0")                           # ... and borrows worker 1's idle device for a tile
    assert loan is not None and loan.name == "cpu#1" and pool.borrow("cpu#0") is None
    claimed = threading.Event()
    t = threading.Thread(target=lambda: (pool.claim("cpu#1"), claimed.set()))
    t.start()                                             # worker 1 gets a job: it waits for that one tile
    assert not claimed.wait(0.2)
    assert pool.borrow("cpu#0") is None                   # and nothing more is lent from it meanwhile
    loan.give_back()                                      # the tile is done
    assert claimed.wait(10)
    t.join(10)
    assert pool.borrow("cpu#0") is None                   # busy with its own job now
    pool.release("cpu#1")
    again = pool.borrow("cpu#0")
    assert again is not None and again.name == "cpu#1"    # idle again: lendable
    again.give_back()
    again.give_back()                                     # idempotent
    r = {w["name"]: w for w in pool.report()}
    assert r["cpu#1"]["tiles_lent"] == 2 and r["cpu#1"]["state"] == "idle" and r["cpu#0"]["state"] == "busy"


def test_only_devices_of_the_jobs_type_are_lent():
    pool = DevicePool([("cuda:0", "cuda:0"), ("cpu", "cpu")])
    assert pool.lender("cuda:0").size == 0 and pool.borrow("cuda:0") is None


def test_a_tiled_run_stops_borrowing_once_the_lender_claims_its_device():
    """In a tiled run with the pool's lender, worker 1 takes its device back at the first finished tile: claim
    returns (after at most the tile it was computing) and no later tile is computed there; the result is unchanged."""
    from impasto.tiling.mt_tiled import stylize_tiled
    net = tiny_net()
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 32, 32, generator=g), size=(300, 300), mode="bicubic",
                                        align_corners=False).clamp(0, 1)
    ref = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32")
    pool = DevicePool([("cpu#0", "cpu"), ("cpu#1", "cpu")])
    pool.claim("cpu#0")
    lent_at_claim = []

    def on_tile(*_):
        if not lent_at_claim:
            pool.claim("cpu#1")
            lent_at_claim.append({w["name"]: w for w in pool.report()}["cpu#1"]["tiles_lent"])

    report: dict = {}
    out = stylize_tiled(net, x, None, on_tile=on_tile, device=CPU, tile_size=128, precision="fp32",
                        helpers=pool.lender("cpu#0"), report=report)
    assert torch.equal(out, ref)
    by = report["tiles_by_device"]
    assert lent_at_claim[0] >= 1 and by.get("cpu#1", 0) == lent_at_claim[0]   # nothing lent after the claim
    assert by["home"] == report["tiles"] - lent_at_claim[0]
