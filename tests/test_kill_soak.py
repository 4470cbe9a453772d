"""The short kill -9 soak (bench/kill_soak.py): a real `rnnkit train classify` process SIGKILLed four times
(during its first checkpoint, at startup, during a checkpoint write, while training), resumed after each kill;
no run is lost or left unloadable, and the finished run's per-epoch losses and final weights equal an
uninterrupted run's."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sigkill_at_random_moments_then_resume_equals_the_uninterrupted_run(tmp_path):
    args = ["--kills", "4", "--kills-per-run", "4", "--rows", "240", "--epochs", "2", "--checkpoint-every", "2",
            "--startup", "3", "--window", "0.3", "--workdir", str(tmp_path), "--json"]
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "kill_soak.py"), *args], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode in (0, 1) and out.stdout.strip(), out.stderr[-3000:]  # rc 1 + no JSON: the soak crashed
    r = json.loads(out.stdout)
    assert r["kills"] == 4 and r["by_trigger"] == {"first-write": 1, "startup": 1, "write": 1, "training": 1}, r
    assert r["resumes"] >= 2, r  # the write and training kills hit a run that exists: each is resumed
    assert r["during_write"] >= 1, r  # a temporary checkpoint file existed at the SIGKILL
    assert r["lost"] == 0 and r["unloadable"] == 0 and not r["refused"], r["errors"] + r["refused"]
    assert r["runs"] >= 1 and r["runs_equal"] == r["runs"], r["errors"]
    (_, _, _, ref_train), (_, _, _, ref_valid) = r["reference_final"]
    (_, _, split_t, train), (_, _, split_v, valid) = r["final"]
    assert (split_t, split_v) == ("train", "valid")
    assert train["loss"] == ref_train["loss"] and valid["loss"] == ref_valid["loss"]  # exact: same seed, resumed
    assert out.returncode == 0
