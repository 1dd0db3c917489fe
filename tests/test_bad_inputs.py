"""A catalogue of bad inputs, each answered before any work with a one-line error naming where it is.

Every case runs the command a user would (`rdmbench run SUITE --cache C --results R`, or another verb)
in-process, and checks: exit code 2, exactly one `error:` line on stderr holding the expected words
(the file and key, the allowed values or the fix), and no cache folder created (nothing computed).
"""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import TINY_BASE
from rdmbench.cli import main

BASE = yaml.safe_load(TINY_BASE)
#: a database given at sampling time: shapes drawn with another seed
SAMPLING_DB = {"name": "from-dataset", "dataset": {"name": "synthetic-shapes", "image_size": 16, "seed": 7}, "size": 50}


def suite(tmp: Path, change: Callable[[dict], None] | None = None, name: str = "s.yaml") -> Path:
    doc = copy.deepcopy(BASE)
    if change:
        change(doc)
    path = tmp / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def setter(dotted: str, value) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        node = doc
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return change


def rarm(doc: dict) -> None:
    """The token head, sampled with its own default settings (the tiny suite's are rdm's)."""
    setter("base.head", {"name": "rarm"})(doc)
    doc["base"]["sample"].pop("head", None)


def run(*extra: str, change=None, setup: Callable[[Path], None] | None = None):
    """A case: the suite (with `change` applied) run with `extra` arguments."""
    def make(tmp: Path) -> list[str]:
        if setup:
            setup(tmp)
        return ["run", str(suite(tmp, change)), *extra]
    return make


def verb(*argv: str, setup: Callable[[Path], None] | None = None):
    def make(tmp: Path) -> list[str]:
        if setup:
            setup(tmp)
        return [a.replace("{tmp}", str(tmp)) for a in argv]
    return make


def write(name: str, text: str | bytes):
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


def pickled_checkpoint(tmp: Path) -> None:
    """A checkpoint whose unpickling would run code: must be refused, never loaded."""
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))
    with open(tmp / "evil.pth", "wb") as f:
        pickle.dump({"state": Payload()}, f)


def autoencoder_files(weights: Callable[[Path], None]):
    """A single-file LDM autoencoder beside its config.yaml, with the weights file written by ``weights``."""
    def setup(tmp: Path) -> None:
        from test_pretrained_autoencoder import ldm_config

        (tmp / "ae").mkdir()
        (tmp / "ae" / "config.yaml").write_text(yaml.safe_dump(ldm_config("vq")))
        weights(tmp / "ae" / "model.ckpt")
    return setup


def torch_save_object(path: Path) -> None:
    import torch

    torch.save({"state_dict": {}, "payload": Path("/etc")}, path)  # a pickled object, not a tensor


PRETRAINED = {"name": "pretrained-autoencoder", "path": "ae/model.ckpt"}
VQ = {"name": "autoencoder", "kind": "vq", "block_out_channels": [16, 32], "num_vq_embeddings": 256}


def yaml_case(text: str):
    def make(tmp: Path) -> list[str]:
        (tmp / "s.yaml").write_text(text)
        return ["run", str(tmp / "s.yaml")]
    return make


def drop(key: str):
    def change(doc: dict) -> None:
        doc["base"].pop(key)
    return change


#: the offline joint image–text space on a pixel tower (nothing to load for a refused run)
LIT = {"name": "lit", "image": {"name": "pixels"}}

CASES = {
    # --- suite files ------------------------------------------------------------------------------
    "suite file missing": (verb("run", "{tmp}/nope.yaml"), "nope.yaml: suite file not found"),
    "not YAML": (yaml_case("base: [unclosed"), "not valid YAML"),
    "not a mapping": (yaml_case("- a\n- b\n"), "a suite must be a mapping"),
    "unknown top-level key": (run(change=setter("sweeps", {})), "unknown top-level key 'sweeps' (did you mean 'sweep'?"),
    "unknown run key": (run(change=setter("base.sample.nmu", 3)), "base.sample.nmu: unknown key 'nmu' (did you mean 'num'?"),
    "missing required section": (run(change=drop("encoder")), "base.encoder: required key is missing"),
    "unknown plugin": (run(change=setter("base.retriever", {"name": "fais"})),
                       "base.retriever.name: unknown retriever 'fais' (did you mean 'faiss'?"),
    "unknown plugin argument": (run(change=setter("base.head.cond_dropot", 0.1)),
                                "base.head.cond_dropot: unknown key 'cond_dropot' (did you mean 'cond_dropout'?"),
    "unknown train key": (run(change=setter("base.train.stesp", 3)), "base.train.stesp: unknown key 'stesp' (did you mean 'steps'?"),
    "train settings that disagree": (run(change=setter("base.train.grad_accumulation", 3)),
                                     "base.train.grad_accumulation: must be at least 1 and divide batch_size=8, got 3"),
    "string for int": (run(change=setter("base.train.batch_size", "64")), "base.train.batch_size"),
    "bool for int": (run(change=setter("base.sample.num", True)), "base.sample.num"),
    "float for int": (run(change=setter("base.train.steps", 3.0)), "base.train.steps"),
    "choice not allowed": (run(change=setter("base.sample.mode", {"name": "texts"})),
                           "base.sample.mode.name: unknown sampling_mode 'texts' (did you mean 'text'?"),
    "k larger than the database": (run(change=setter("sweep.grid.k_train", [200])),
                                   "k = 200 is larger than the database (100 entries); allowed: 0..100"),
    "unknown profile": (run("--profile", "huge"), "--profile: unknown profile 'huge'"),
    "zip of unequal lengths": (run(change=setter("sweep", {"zip": {"k_train": [1, 2], "seed": [0]}})),
                               "zip axes must have equal lengths"),
    "axis not a list": (run(change=setter("sweep.grid.k_train", 2)), "sweep.grid.k_train: an axis must be a non-empty list"),
    "unknown sweep kind": (run(change=setter("sweep", {"grdi": {"k_train": [1]}})), "unknown sweep kind 'grdi'"),
    "include missing": (run(change=setter("include", "base/none.yaml")), "none.yaml: suite file not found"),
    "include cycle": (verb("run", "{tmp}/a.yaml", setup=lambda t: (write("a.yaml", "include: b.yaml\n")(t),
                                                                    write("b.yaml", "include: a.yaml\n")(t))),
                      "include cycle"),
    "unknown report key": (run(change=setter("report", {"y": "fid"})), "unknown report key 'y'"),
    "unknown task": (run(change=setter("task", "rarm")), "unknown task 'rarm'"),
    "metric needs logits": (run(change=lambda d: (setter("base.metrics.use", {"inception-score": {}})(d),
                                                  setter("base.metrics.feature_extractor", {"name": "pixels"})(d))),
                            "metric 'inception-score' needs ['logits'] from the feature extractor"),
    "head levels mismatch": (run(change=setter("base.head.attention_levels", [True])), "attention_levels"),
    "head groups mismatch": (run(change=setter("base.head.norm_num_groups", 5)), "norm_num_groups"),
    "top_m out of range": (run(change=setter("base.sample.mode", {"name": "unconditional", "top_m": 1.5})), "base.sample.mode.top_m"),
    "negative guidance": (run(change=setter("base.sample.guidance_scale", -1.0)), "base.sample.guidance_scale"),
    # --- sampling controls (issue 8) --------------------------------------------------------------------
    "top_m zero": (run(change=setter("base.sample.mode", {"name": "unconditional", "top_m": 0.0})),
                   "base.sample.mode.top_m: Input should be greater than 0"),
    "guidance without null conditioning": (
        run(change=lambda d: (setter("base.head.cond_dropout", 0.0)(d), setter("base.sample.guidance_scale", 2.0)(d))),
        "base.sample.guidance_scale: guidance scale 2.0 needs a head trained with null conditioning"),
    "sampling database embedded with another encoder": (
        run(change=lambda d: (setter("base.sample.database", SAMPLING_DB)(d),
                              setter("base.sample.encoder", {"name": "efficientnet-lite", "variant": "lite2"})(d))),
        "base.sample.encoder: the sampling database must be embedded with the run's encoder 'efficientnet-lite'"),
    "k at sampling larger than the sampling database": (
        run(change=lambda d: (setter("base.sample.database", {**SAMPLING_DB, "size": 10})(d),
                              setter("base.sample.k", 12)(d))),
        "base.sample.k: k = 12 is larger than the sampling database (10 entries); allowed: 0..10"),
    "held-out mode takes no top_m": (run(change=setter("base.sample.mode", {"name": "held-out", "top_m": 0.1})),
                                     "base.sample.mode.top_m: unknown key 'top_m': sampling_mode 'held-out' takes no"),
    "retriever query argument unknown": (run(change=setter("base.retriever", {"name": "faiss", "query": {"nprob": 4}})),
                                         "base.retriever.query.nprob: unknown key 'nprob' (did you mean 'nprobe'?"),
    "train split missing": (run(change=setter("base.data.train_split", "training")), "base.data.train_split"),
    "reference split missing": (run(change=setter("base.data.reference_split", "val")), "base.data.reference_split"),
    "token head over a first stage without a codebook": (
        run(change=rarm),
        "base.first_stage: head 'rarm' generates codebook tokens, and first stage 'identity' as configured has no "
        "codebook"),
    "top-k larger than the codebook": (
        run(change=lambda d: (rarm(d), setter("base.first_stage", VQ)(d),
                              setter("base.sample.head", {"top_k": 300})(d))),
        "base.sample.head: top_k=300 must be None (the whole codebook) or in 1..256"),
    "temperature not positive": (
        run(change=lambda d: (rarm(d), setter("base.first_stage", VQ)(d),
                              setter("base.sample.head", {"temperature": 0.0})(d))),
        "base.sample.head: temperature=0.0 must be > 0"),
    "top-k asked of a diffusion head": (run(change=setter("base.sample.head", {"top_k": 50})),
                                        "base.sample.head.top_k: unknown key 'top_k' (allowed: solver, steps, eta) for "
                                        "head 'rdm' sampler"),
    "a diffusion solver asked of a token head": (
        run(change=lambda d: (rarm(d), setter("base.first_stage", VQ)(d),
                              setter("base.sample.head", {"solver": "dpm++"})(d))),
        "base.sample.head.solver: unknown key 'solver' (allowed: top_k, temperature) for head 'rarm' sampler"),
    "a solver that is no diffusers scheduler": (
        run(change=setter("base.sample.head", {"solver": "dpm"})),
        "base.sample.head: solver='dpm' is not a diffusers scheduler; allowed: ddim, dpm++ or a scheduler class name"),
    "a suite name outside results/": (run(change=setter("suite", "../../elsewhere/x")), "suite: '../../elsewhere/x' is "
                                                                                        "not a suite name"),
    "a report axis the suite does not sweep": (run(change=setter("report", {"x": "k_trian"})),
                                               "report.x: unknown report x 'k_trian' (did you mean 'k_train'?"),
    "a report metric no run writes": (run(change=setter("report", {"metrics": ["fid", "presicion"]})),
                                      "report.metrics[1]: unknown column 'presicion' (did you mean 'precision'?"),
    "an unknown suite format version": (run(change=setter("version", 2)), "version: unknown suite format version 2; "
                                                                          "allowed: 1"),
    "patch size larger than the image": (
        run(change=setter("base.database", {"name": "patches", "database": SAMPLING_DB, "size": 20})),
        "base.database.size: size 20 is larger than the 16x16 images of database 'from-dataset' (allowed: 2..16)"),
    # --- text- and class-conditional sampling (issue 10) ---------------------------------------------
    "text mode with an encoder without a text tower": (
        run(change=lambda d: (setter("base.sample.mode", {"name": "text"})(d), setter("sweep.grid.k_train", [2])(d))),
        "base.encoder: sampling mode 'text' embeds prompts with the run's encoder, and 'efficientnet-lite' has no "
        "text tower; use an encoder that embeds text too (allowed: clip, lit)"),
    "empty prompt list": (run(change=lambda d: (setter("base.sample.mode", {"name": "text", "prompts": []})(d),
                                                setter("base.encoder", LIT)(d), setter("sweep.grid.k_train", [2])(d))),
                          "base.sample.mode.prompts: the prompt list is empty; list at least one prompt"),
    "class the dataset does not have": (
        run(change=lambda d: (setter("base.sample.mode", {"name": "text", "classes": ["circel"]})(d),
                              setter("base.encoder", LIT)(d), setter("sweep.grid.k_train", [2])(d))),
        "base.sample.mode: classes: unknown class 'circel' (did you mean 'circle'?"),
    "joint space holding out a class the dataset does not have": (
        run(change=setter("base.encoder", {**LIT, "held_out_classes": ["circel"]})),
        "base.encoder: held_out_classes names 'circel', which the dataset does not have (allowed: "),
    "class pool smaller than k": (
        run(change=lambda d: (setter("base.sample.mode", {"name": "class-pool", "pool": 1})(d),
                              setter("base.encoder", LIT)(d), setter("sweep.grid.k_train", [2])(d))),
        "base.sample.k: the pool (l = 1) is smaller than sample.k = 2"),
    "text alone at another k": (
        run(change=lambda d: (setter("base.sample.mode", {"name": "text"})(d), setter("base.sample.k", 2)(d),
                              setter("base.encoder", LIT)(d), setter("sweep.grid.k_train", [2])(d))),
        "base.sample.k: condition 'text' conditions on the prompt's embedding alone (k = 1)"),
    "text space is the run's encoder": (
        run(change=lambda d: (setter("base.encoder", LIT)(d), setter("base.metrics.text_space", LIT)(d))),
        "base.metrics.text_space: the text space is the run's encoder"),
    "text metric without a text space": (
        run(change=setter("base.metrics.use", {"text-agreement": {}})),
        "base.metrics.use.text-agreement: metric 'text-agreement' grades samples against their prompts"),
    "text space without a text tower": (
        run(change=setter("base.metrics.text_space", {"name": "pixels"})),
        "base.metrics.text_space: encoder 'pixels' has no text tower"),
    # --- CLI flags ------------------------------------------------------------------------------------
    "unknown --only run": (run("--only", "k_train=9_seed=0"), "--only: unknown run 'k_train=9_seed=0'"),
    "report without results": (verb("report", "{tmp}/nothing"), "results.csv not found"),
    "plugins of an unknown kind": (verb("plugins", "--kind", "heads"), "unknown kind 'heads'"),
    "cache verb on a missing cache": (verb("cache", "list", "--cache", "{tmp}/none"), "no stage cache at"),
    # --- data and weight files ----------------------------------------------------------------------
    "fashion-mnist root without files": (run(change=setter("base.data.dataset", {"name": "fashion-mnist", "root": "/nonexistent"})),
                                         "Fashion-MNIST files not found"),
    "image folder root missing": (run(change=setter("base.data.dataset", {"name": "image-folder", "root": "/nonexistent"})),
                                  "image-folder"),
    "inception weights missing": (run(change=setter("base.metrics.feature_extractor",
                                                    {"name": "inception-v3", "weights_path": "/nonexistent.pth"})),
                                  "/nonexistent.pth"),
    "clip checkpoint missing": (run(change=setter("base.encoder", {"name": "clip", "pretrained": "/nonexistent.bin"})),
                                "/nonexistent.bin"),
    "efficientnet weights not a file": (run(change=setter("base.encoder", {"name": "efficientnet-lite",
                                                                            "weights_path": "/nonexistent.pth"})),
                                        "weights_path '/nonexistent.pth' is not a file"),
    "inception checkpoint is not a checkpoint": (run(setup=write("junk.pth", b"not a checkpoint"),
                                                     change=setter("base.metrics.feature_extractor",
                                                                   {"name": "inception-v3", "weights_path": "junk.pth"})),
                                                 "holds more than tensors or is corrupted"),
    "autoencoder checkpoint missing": (run(change=setter("base.first_stage", PRETRAINED)),
                                       "base.first_stage: pretrained-autoencoder: path 'ae/model.ckpt' is not a file"),
    "autoencoder config missing": (run(setup=write("ae/model.ckpt", b"x"), change=setter("base.first_stage", PRETRAINED)),
                                   "config.yaml' not found"),
    "autoencoder checkpoint corrupted": (run(setup=autoencoder_files(lambda p: p.write_bytes(b"\x00" * 64)),
                                             change=setter("base.first_stage", PRETRAINED)),
                                         "base.first_stage: pretrained-autoencoder"),
    "autoencoder checkpoint carries pickled objects": (run(setup=autoencoder_files(torch_save_object),
                                                           change=setter("base.first_stage", PRETRAINED)),
                                                       "weights_only"),
    "inception checkpoint carries pickled code": (run(setup=pickled_checkpoint,
                                                      change=setter("base.metrics.feature_extractor",
                                                                    {"name": "inception-v3", "weights_path": "evil.pth"})),
                                                  "holds more than tensors"),
    "executor unknown": (run("--executor", "dask"), "--executor: unknown executor 'dask'"),
    "executor option for the local loop": (run("--executor-option", "num_gpus=1"),
                                           "the local executor takes no options"),
    "executor option unknown to ray": (run("--executor", "ray", "--executor-option", "gpus=1"),
                                       "unknown option 'gpus' for --executor ray (allowed: num_cpus, num_gpus"),
    "slurm without sbatch": (run("--executor", "slurm"), "no sbatch on PATH"),
    "tracker unknown in the suite": (run(change=setter("track", ["tensorbord"])),
                                     re.compile(r"s\.yaml:\d+: track\[0\]: unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?")),
    "tracker unknown on the command line": (run("--track", "wandb"), "--track: unknown tracker 'wandb'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_before_any_work(case, tmp_path, monkeypatch, capsys):
    make, expected = CASES[case]
    monkeypatch.chdir(tmp_path)
    argv = make(tmp_path)
    if argv[0] == "run":
        argv += ["--cache", str(tmp_path / "cache"), "--results", str(tmp_path / "out")]
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, f"exit code {code}; stderr:\n{err}"
    found = bool(errors) and (expected.search(errors[0]) if isinstance(expected, re.Pattern) else expected in errors[0])
    assert len(errors) == 1 and found, err
    assert not (tmp_path / "cache").exists(), "no stage may start before the input is checked"


def test_catalogue_is_large_enough():
    assert len(CASES) >= 30


# -- a plugin checks itself against the run's images, and its libraries, before any work -------------------

def cells_encoder():
    """A histogram-of-cells encoder, as an outside author writes one (HOG-like): cells larger than the image
    cannot work, which only the data's shape tells."""
    from rdmbench.api import Encoder
    from rdmbench.errors import ConfigError

    class Cells(Encoder):
        """Histograms of cell x cell blocks (a test fixture)."""
        name = "cells"
        requires = {}

        def __init__(self, cell: int = 8):
            self.cell = cell

        def check(self, *, images=None):
            if images is not None and self.cell > min(images[:2]):
                raise ConfigError(f"cells of {self.cell} px are larger than the {images[0]}x{images[1]} images; "
                                  f"allowed: 1..{min(images[:2])}", key="cell")

    return Cells


@pytest.mark.parametrize("spec,expected", [
    ({"name": "cells", "cell": 40}, "base.encoder.cell: cells of 40 px are larger than the 16x16 images; allowed: 1..16"),
    ({"name": "needs-lib"}, "base.encoder: pip install no-such-module-rdmbench (ModuleNotFoundError"),
])
def test_a_plugin_of_any_kind_is_checked_against_the_images_and_its_libraries(spec, expected, tmp_path, monkeypatch,
                                                                               request, capsys):
    """An encoder (not only a retriever) declares ``requires``; its ``check`` is given the run's image shape."""
    from conftest import register_for_test

    cells = cells_encoder()
    needs = type("NeedsLib", (cells,), {"name": "needs-lib", "__doc__": "Needs a library (a test fixture).",
                                        "requires": {"no_such_module_rdmbench": "pip install no-such-module-rdmbench"}})
    register_for_test(request, monkeypatch, "rdmbench_encoders", cells, needs)
    monkeypatch.chdir(tmp_path)
    argv = run(change=setter("base.encoder", spec))(tmp_path)
    code = main([*argv, "--cache", str(tmp_path / "cache"), "--results", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / "cache").exists()
