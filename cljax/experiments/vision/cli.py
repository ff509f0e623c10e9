"""``cljax vision``: multi-domain image classification by cross-learning.

``--mode study`` (the default) runs the Figs 10–11 study (separate, consensus,
parametric and functional cross-learning over ε grids, several seeds) and
writes CSV + PNG into ``--out``; a single mode trains one configuration (or one
per value of ``--eps-grid``).  Progress goes to stderr; ``--json`` prints one
JSON object on stdout.
"""

from __future__ import annotations

import argparse
import sys

from cljax.experiments._common import positive_float, positive_int

DEFAULT_PARAMETRIC_GRID = (0.0, 1.0, 3.0, 10.0)
DEFAULT_FUNCTIONAL_GRID = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0)
# η_D per dataset.  Office-Home: the paper's 10 per epoch.  Digits: an epoch is
# only 10 steps (200 images, batch 20), and η_D = 10 drives λ_t to 6-10 within
# three epochs and kills every network (docs/vision.md); 0.3 was chosen on
# held-out seeds 10-12 from {0.1, 0.3, 1, 10} (tools/vision_regime_sweep.py).
DEFAULT_DUAL_STEP = {"digits": 0.3, "office-home": 10.0}


def _float_list(text):
    if text.strip().lower() in ("", "none"):
        return []  # leave this mode out of the study
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err
    if any(v != v or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0, got {text!r}")
    return values


def _int_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from err


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("vision", help="multi-domain image classification (paper Figs 10-11)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("digits", "office-home"), default="digits")
    p.add_argument("--root", help="Office-Home folder <root>/<Domain>/<Class>/*.jpg")
    p.add_argument("--mode", default="study",
                   choices=("study", "separate", "consensus", "parametric", "functional"))
    p.add_argument("--eps", type=float, default=None, help="ε of a single cross-learning run")
    p.add_argument("--eps-grid", type=_float_list, default=None,
                   help="comma-separated ε values (single mode)")
    p.add_argument("--parametric-grid", type=_float_list, default=list(DEFAULT_PARAMETRIC_GRID),
                   help="study ε grid ('none' leaves parametric out)")
    p.add_argument("--functional-grid", type=_float_list, default=list(DEFAULT_FUNCTIONAL_GRID),
                   help="study ε grid ('none' leaves functional out)")
    p.add_argument("--k", type=positive_int, default=20,
                   help="digits: training images per class per domain")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="default 32 (digits) / 224 (office-home)")
    p.add_argument("--model", choices=("small", "alexnet224"), default=None,
                   help="default small (digits) / alexnet224 (office-home)")
    p.add_argument("--width", type=positive_int, default=8)
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=20)
    p.add_argument("--optimizer", choices=("adam", "sgd", "momentum"), default="adam")
    p.add_argument("--lr", type=positive_float, default=0.003, help="η_P")
    p.add_argument("--dual-step", type=positive_float, default=None,
                   help="η_D; default 0.3 (digits) / 10 (office-home, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="single-mode seed")
    p.add_argument("--seeds", type=_int_list, default=[0, 1, 2], help="study seeds")
    p.add_argument("--out", default=None, help="output folder (CSV, PNG, checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="continue runs from the checkpoints in --out")
    p.add_argument("--shard", action="store_true",
                   help="shard the task axis over the available devices")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_vision, report=print_vision)


class _Progress:
    """A one-line progress bar per run, on stderr."""

    @property
    def stream(self):
        return sys.stderr  # looked up at write time (tests swap it)

    def run(self, name, i, n):
        self.stream.write(f"[{i + 1}/{n}] {name}\n")
        self.stream.flush()

    def epoch(self, name, epoch, epochs, info):
        filled = int(20 * epoch / epochs)
        duals = ",".join(f"{d:.2f}" for d in info["duals"])
        self.stream.write(f"\r  [{'#' * filled}{'.' * (20 - filled)}] epoch {epoch}/{epochs}"
                          f" loss {info['loss']:.3f} λ [{duals}]")
        if epoch == epochs:
            self.stream.write("\n")
        self.stream.flush()


def run_vision(args) -> dict:
    import time
    from dataclasses import asdict

    from cljax.experiments.vision.study import run_study
    from cljax.experiments.vision.training import VisionConfig, make_task_mesh

    start = time.perf_counter()
    if args.resume and args.out is None:
        raise SystemExit("cljax vision: --resume needs --out (where the checkpoints are)")
    if args.dataset == "office-home":
        if not args.root:
            raise SystemExit("cljax vision: --dataset office-home needs --root")
        from cljax.experiments.vision.office_home import load_office_home

        size = args.image_size or 224
        model = args.model or "alexnet224"

        def load(seed):
            return load_office_home(args.root, image_size=size, seed=seed)
    else:
        from cljax.experiments.vision.digits import load_digits

        size = args.image_size or 32
        model = args.model or "small"

        def load(seed):
            return load_digits(k=args.k, image_size=size, seed=seed)

    base = VisionConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                        learning_rate=args.lr, model=model,
                        dual_step_size=(args.dual_step if args.dual_step is not None
                                        else DEFAULT_DUAL_STEP[args.dataset]),
                        width=args.width, hidden=args.hidden)
    progress = _Progress()
    if args.mode == "study":
        seeds, p_grid, f_grid = args.seeds, args.parametric_grid, args.functional_grid
    else:
        seeds = [args.seed]
        grid = args.eps_grid if args.eps_grid else [args.eps if args.eps is not None else 0.0]
        if args.mode in ("separate", "consensus"):
            grid = [0.0]
        p_grid = grid if args.mode == "parametric" else []
        f_grid = grid if args.mode == "functional" else []
    probe = load(seeds[0])
    mesh = make_task_mesh(probe.num_domains) if args.shard else None
    summary = run_study(
        lambda s: probe if s == seeds[0] else load(s), base, seeds, p_grid, f_grid,
        out_dir=args.out, resume=args.resume, mesh=mesh, progress=progress.epoch,
        on_run=progress.run)
    if args.mode in ("separate", "consensus"):
        summary["rows"] = [r for r in summary["rows"] if r["mode"] == args.mode]
    return {"command": "vision", "dataset": args.dataset, "mode": args.mode,
            "image_size": size, "k": args.k if args.dataset == "digits" else None,
            "config": asdict(base), "seeds": seeds,
            "skipped_files": [list(s) for s in probe.skipped],
            "num_train": probe.n_train.tolist(), "num_test": probe.n_test.tolist(),
            "out": args.out, "summary": summary, "seconds": time.perf_counter() - start}


def print_vision(out: dict) -> None:
    s = out["summary"]
    print(f"cljax vision: {out['dataset']} ({', '.join(s['domains'])}), mode {out['mode']}, "
          f"seeds {out['seeds']}, train images per domain {out['num_train']}")
    if out["skipped_files"]:
        print(f"skipped {len(out['skipped_files'])} file(s):")
        for path, reason in out["skipped_files"]:
            print(f"  {path}: {reason}")
    print(f"{'mode':<12}{'eps':>8}{'accuracy':>11}{'sd':>8}  per domain")
    for r in s["rows"]:
        per = " ".join(f"{a:.3f}" for a in r["per_domain_accuracy"])
        print(f"{r['mode']:<12}{r['eps']:>8g}{r['mean_accuracy']:>11.4f}"
              f"{r['sd_accuracy']:>8.4f}  {per}")
    t = s["targets"]
    if out["mode"] == "study":
        print(f"consensus > separate: {t['consensus_beats_separate']}")
        for m in ("parametric", "functional"):
            if m in t:
                print(f"{m}: best ε {t[m]['best_eps']:g}, accuracy {t[m]['best_accuracy']:.4f},"
                      f" margin over best baseline {100 * t[m]['margin_over_best_baseline']:+.1f}"
                      f" points, rises from smallest ε: {t[m]['rises_from_smallest_eps']},"
                      f" falls back at largest ε: {t[m]['falls_back_at_largest_eps']}")
    if out["out"]:
        print(f"outputs in {out['out']}")
    print(f"({out['seconds']:.0f} s)")
