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

from cljax.experiments._common import UsageError, positive_float, positive_int, radius

DEFAULT_PARAMETRIC_GRID = (0.0, 1.0, 3.0, 10.0)
DEFAULT_FUNCTIONAL_GRID = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0)
# η_D per dataset.  Office-Home: the paper's 10 per epoch.  Digits: an epoch is
# only 10 steps (200 images, batch 20), and η_D = 10 drives λ_t to 6-10 within
# three epochs and kills every network (docs/vision.md); 0.3 was chosen on
# held-out seeds 10-12 from {0.1, 0.3, 1, 10} (tools/vision_regime_sweep.py).
DEFAULT_DUAL_STEP = {"digits": 0.3, "tfds": 0.3, "office-home": 10.0}


SEED_LIMIT = 2 ** 32  # numpy Generators and PRNGKey take seeds in [0, 2^32)


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


def _seed(text):
    """argparse type: a seed, an integer in [0, 2^32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2^32), got {text}")
    return value


def _seed_list(text):
    """argparse type: comma-separated seeds, at least one."""
    values = [_seed(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one seed, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"seeds must be distinct, got {text!r}")
    return values


def _image_size(text):
    value = positive_int(text)
    if value < 4:
        raise argparse.ArgumentTypeError(f"must be an integer >= 4, got {text}")
    return value


def _class_list(text):
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated class names, got {text!r}")
    return values


def _class_map(text):
    """argparse type: ``DOMAIN:FROM=TO[,FROM=TO...]`` (DOMAIN as printed, e.g. emnist/digits)."""
    domain, sep, pairs = text.rpartition(":")
    if domain.startswith("tfds:"):
        domain = domain[len("tfds:"):]
    mapping = {}
    for pair in pairs.split(","):
        src, eq, dst = pair.partition("=")
        if not (sep and eq and src.strip() and dst.strip()):
            raise argparse.ArgumentTypeError(
                f"expected DOMAIN:FROM=TO[,FROM=TO...], got {text!r}")
        mapping[src.strip()] = dst.strip()
    return domain, mapping


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("vision", help="multi-domain image classification (paper Figs 10-11)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("digits", "office-home", "tfds"), default=None,
                   help="default digits; tfds when --domains are tfds:...")
    p.add_argument("--domains", nargs="+", default=None, metavar="DOMAIN",
                   help="digits: a subset of uci mnist mnist_m; office-home: domain folders; "
                        "TFDS: tfds:NAME[/CONFIG][:VERSION][@SPLIT] per domain")
    p.add_argument("--root", help="Office-Home folder <root>/<Domain>/<Class>/*.jpg")
    p.add_argument("--data-dir", default=None,
                   help="TFDS data folder (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--download", action="store_true",
                   help="TFDS: download and prepare missing domains (needs network)")
    p.add_argument("--test-per-class", type=positive_int, default=100,
                   help="TFDS: test images per class per domain")
    p.add_argument("--classes", type=_class_list, default=None,
                   help="TFDS: comma-separated class names shared by every domain")
    p.add_argument("--class-map", type=_class_map, action="append", default=[],
                   help="TFDS: rename a domain's classes, DOMAIN:FROM=TO[,FROM=TO...]")
    p.add_argument("--mode", default="study",
                   choices=("study", "separate", "consensus", "parametric", "functional"))
    p.add_argument("--eps", type=radius, default=None, help="ε of a single cross-learning run")
    p.add_argument("--eps-grid", type=_float_list, default=None,
                   help="comma-separated ε values (single mode)")
    p.add_argument("--parametric-grid", type=_float_list, default=list(DEFAULT_PARAMETRIC_GRID),
                   help="study ε grid ('none' leaves parametric out)")
    p.add_argument("--functional-grid", type=_float_list, default=list(DEFAULT_FUNCTIONAL_GRID),
                   help="study ε grid ('none' leaves functional out)")
    p.add_argument("--k", type=positive_int, default=20,
                   help="digits / TFDS: training images per class per domain")
    p.add_argument("--image-size", type=_image_size, default=None,
                   help="default 32 (digits, TFDS) / 224 (office-home)")
    p.add_argument("--model", choices=("small", "alexnet224"), default=None,
                   help="default small (digits, TFDS) / alexnet224 (office-home)")
    p.add_argument("--width", type=positive_int, default=8)
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=20)
    p.add_argument("--optimizer", choices=("adam", "sgd", "momentum"), default="adam")
    p.add_argument("--lr", type=positive_float, default=0.003, help="η_P")
    p.add_argument("--dual-step", type=positive_float, default=None,
                   help="η_D; default 0.3 (digits, TFDS) / 10 (office-home, the paper's)")
    p.add_argument("--seed", type=_seed, default=0, help="single-mode seed")
    p.add_argument("--seeds", type=_seed_list, default=[0, 1, 2], help="study seeds")
    p.add_argument("--out", default=None, help="output folder (CSV, PNG, checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="continue runs from the checkpoints in --out")
    p.add_argument("--shard", action="store_true",
                   help="shard the task axis over the available devices")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_vision, report=print_vision)

    def one_line_error(message):  # a bad option: one line on stderr, status 2, no usage dump
        # (the same line as core's cljax.cli._Parser, which makes this redundant once merged)
        p.exit(2, f"{p.prog}: error: {message} (see {p.prog} -h)\n")

    p.error = one_line_error


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


# The smallest square input each model takes (its pooling stack; checked in the tests).
MIN_IMAGE_SIZE = {"small": 8, "alexnet224": 63}
DIGIT_DOMAINS = ("uci", "mnist", "mnist_m")


def _check_options(args) -> tuple[str, int, str]:
    """Every option combination, before any work: (dataset, image size, model)."""
    from cljax.experiments.vision.tfds import is_tfds_spec, parse_domain

    domains = args.domains
    tfds_specs = [d for d in domains or [] if is_tfds_spec(d)]
    dataset = args.dataset or ("tfds" if tfds_specs else "digits")
    if tfds_specs and (dataset != "tfds" or len(tfds_specs) != len(domains)):
        raise UsageError("--domains: tfds:... domains cannot be mixed with other domains or "
                         f"with --dataset {dataset}")
    if domains is not None and len(set(domains)) != len(domains):
        raise UsageError(f"--domains: each domain once, got {domains}")
    if dataset == "tfds":
        if not domains:
            raise UsageError("--dataset tfds needs --domains tfds:NAME[/CONFIG][@SPLIT] ...")
        for d in domains:
            try:
                parse_domain(d)
            except ValueError as err:
                raise UsageError(f"--domains: {err}") from None
    else:
        for option, value in (("--data-dir", args.data_dir), ("--download", args.download),
                              ("--classes", args.classes), ("--class-map", args.class_map)):
            if value:
                raise UsageError(f"{option} applies to TFDS domains (--domains tfds:...) only")
    if dataset == "digits" and domains:
        unknown = [d for d in domains if d not in DIGIT_DOMAINS]
        if unknown:
            raise UsageError(f"--domains: unknown digit domain(s) {unknown}; choose from "
                             f"{list(DIGIT_DOMAINS)} or give tfds:NAME domains")
    if dataset == "office-home":
        if not args.root:
            raise UsageError("--dataset office-home needs --root (the folder "
                             "<root>/<Domain>/<Class>/*.jpg)")
    elif args.root:
        raise UsageError("--root applies to --dataset office-home only")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out (where the checkpoints are)")
    if args.mode in ("separate", "consensus") and (args.eps is not None or args.eps_grid):
        raise UsageError(f"--eps / --eps-grid do not apply to --mode {args.mode}")
    if args.mode in ("study",) and (args.eps is not None or args.eps_grid):
        raise UsageError("--eps / --eps-grid apply to a single mode; the study takes "
                         "--parametric-grid and --functional-grid")
    model = args.model or ("alexnet224" if dataset == "office-home" else "small")
    size = args.image_size or (224 if dataset == "office-home" else 32)
    if size < MIN_IMAGE_SIZE[model]:
        raise UsageError(f"--image-size {size} is too small for --model {model} "
                         f"(at least {MIN_IMAGE_SIZE[model]})")
    if dataset == "digits" and args.k >= 100:
        raise UsageError(f"--k {args.k}: the shipped digits have 100 images per class, so k "
                         "must be below 100 (k for training, the rest for test)")
    return dataset, size, model


def run_vision(args) -> dict:
    import time
    from dataclasses import asdict

    from cljax.experiments._common import prepare_out_dir

    start = time.perf_counter()
    dataset, size, model = _check_options(args)
    class_map = dict(args.class_map)
    if dataset == "office-home":
        from pathlib import Path

        def load(seed):
            from cljax.experiments.vision.office_home import load_office_home

            return load_office_home(args.root, image_size=size, seed=seed,
                                    domains=args.domains)
        data_config = {"dataset": dataset, "root": str(Path(args.root).absolute()),
                       "domains": args.domains, "image_size": size}
    elif dataset == "tfds":
        def load(seed):
            from cljax.experiments.vision.tfds import load_tfds_domains

            return load_tfds_domains(args.domains, args.data_dir, k=args.k, image_size=size,
                                     seed=seed, test_per_class=args.test_per_class,
                                     classes=args.classes, class_map=class_map,
                                     download=args.download)
        data_config = {"dataset": dataset, "domains": args.domains, "k": args.k,
                       "image_size": size, "test_per_class": args.test_per_class,
                       "classes": args.classes, "class_map": class_map}
    else:
        def load(seed):
            from cljax.experiments.vision.digits import load_digits

            return load_digits(k=args.k, image_size=size, seed=seed,
                               domains=tuple(args.domains or DIGIT_DOMAINS))
        data_config = {"dataset": dataset, "domains": args.domains, "k": args.k,
                       "image_size": size}

    from cljax.experiments.vision.study import OUTPUT_FILES, check_study_out, run_study, study_plan
    from cljax.experiments.vision.training import VisionConfig, make_task_mesh

    base = VisionConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                        learning_rate=args.lr, model=model,
                        dual_step_size=(args.dual_step if args.dual_step is not None
                                        else DEFAULT_DUAL_STEP[dataset]),
                        width=args.width, hidden=args.hidden)
    if args.mode == "study":
        seeds, p_grid, f_grid = args.seeds, args.parametric_grid, args.functional_grid
        baselines = ("separate", "consensus")
    else:  # a single mode trains that mode only
        seeds = [args.seed]
        grid = args.eps_grid if args.eps_grid else [args.eps if args.eps is not None else 0.0]
        p_grid = grid if args.mode == "parametric" else []
        f_grid = grid if args.mode == "functional" else []
        baselines = (args.mode,) if args.mode in ("separate", "consensus") else ()
    if args.out is not None:
        prepare_out_dir(args.out, "--out", files=OUTPUT_FILES)
        check_study_out(args.out, base, study_plan(seeds, p_grid, f_grid, baselines),
                        data_config, args.resume)
    try:
        probe = load(seeds[0])
    except (OSError, ValueError, RuntimeError) as err:  # bad data: one line, no traceback
        raise UsageError(f"{dataset} data: {err}") from None
    progress = _Progress()
    mesh = make_task_mesh(probe.num_domains) if args.shard else None
    summary = run_study(
        lambda s: probe if s == seeds[0] else load(s), base, seeds, p_grid, f_grid,
        out_dir=args.out, resume=args.resume, mesh=mesh, progress=progress.epoch,
        on_run=progress.run, data_config=data_config, baselines=baselines)
    return {"command": "vision", "dataset": dataset, "mode": args.mode,
            "domains": list(probe.domains), "image_size": size,
            "k": args.k if dataset in ("digits", "tfds") else None,
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
