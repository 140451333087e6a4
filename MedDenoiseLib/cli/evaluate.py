"""``meddenoise evaluate``: methods side by side on simulated noise, or a seed-paper protocol.

Simulated noise on clean held-out images (the default protocol)::

    meddenoise evaluate --data FILE_OR_DIR ... --modality mr --noise 5,10,15 \\
        --methods noisy,model:mr_slab25d,bm4d,nlm,median --out REPORT_DIR [--fidelity]

The shipped-models page from one report per modality (writes ``docs/models.md``)::

    meddenoise evaluate --protocol models-table --reports docs/evaluation/*_heldout --doc docs/models.md

Real noise, no clean image: two repeated acquisitions per case (``--pairs`` repeatable)::

    meddenoise evaluate --protocol real-noise --pairs scan1.nrrd scan2.nrrd --pairs ... --modality mr \\
        --methods noisy,model:mr_slab25d,nlm --mask foreground --out REPORT_DIR

Seed-paper reproductions (write ``docs/reproductions.md``)::

    meddenoise evaluate --protocol all --data-root ../shared/data --out runs/reproductions \\
        --doc docs/reproductions.md [--epochs 100]
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import yaml

from ..errors import ConfigError, rule_message

logger = logging.getLogger("meddenoise")

PROTOCOLS = ("simulate", "real-noise", "gondara2016", "nit_raipur", "dualnet", "all", "models-table")


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="compare models and classical baselines (JSON + Markdown report)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="simulate",
                   help="simulate: --data/--methods on modality noise; otherwise a seed-paper reproduction")
    p.add_argument("--config", type=Path, default=None, help="YAML EvaluationConfig (instead of the flags below)")
    p.add_argument("--data", nargs="+", default=None, help="clean image files or directories (held-out cases)")
    p.add_argument("--modality", choices=("ct", "mr", "us", "xr"), default=None)
    p.add_argument("--noise", default=None, help="comma-separated noise levels in the modality's unit, e.g. 5,10,15")
    p.add_argument("--methods", default=None, help="comma-separated: noisy, model, model:NAME, or baseline names")
    p.add_argument("--reference", default=None, help="method compared with every other (default: first model)")
    p.add_argument("--seed", type=int, default=None, help="noise/bootstrap seed (drawn and saved when omitted)")
    p.add_argument("--crop", default=None, help="XxYxZ crop centred on the foreground, e.g. 128x128x16 "
                   "(dualnet protocol: default 96x96x8)")
    p.add_argument("--sigma", choices=("estimate", "oracle"), default="estimate",
                   help="noise std given to baselines: blind estimate or std(noisy - clean)")
    p.add_argument("--mask", choices=("none", "foreground"), default=None,
                   help="voxels scored (default: none for simulate, foreground for real-noise, where MR air is Rician)")
    p.add_argument("--tta", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--fast-noise", action="store_true", help="CT: image-domain noise approximation")
    p.add_argument("--detector-bits", type=int, default=None, metavar="N",
                   help="X-ray: clip noisy images to an N-bit detector's range [0, 2**N - 1], as a detector saturates")
    p.add_argument("--exclude-training", action="store_true", help="drop cases a model was trained on")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="baseline parameter override, e.g. nlm.h_factor=0.6 (repeatable)")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--fidelity", action="store_true",
                   help="add the clinical fidelity section (NPS, TTF, HU bias, lesions, calibration; docs/fidelity.md)")
    p.add_argument("--bootstrap", type=int, default=9999, help="bootstrap resamples for confidence intervals")
    p.add_argument("--out", type=Path, default=None, help="report directory (report.json, report.md, figures/)")
    p.add_argument("--reports", nargs="+", type=Path, default=None,
                   help="models-table: report.json files or report directories (one per modality)")
    p.add_argument("--candidates", nargs="+", type=Path, default=None,
                   help="models-table: reports of models tried and not shipped (own section)")
    p.add_argument("--ablations", nargs="+", type=Path, default=None,
                   help="models-table: reports scoring DUAL-NET ablation variants (own section)")
    p.add_argument("--pairs", nargs=2, action="append", default=None, metavar=("FIRST", "SECOND"),
                   help="real-noise: two repeated acquisitions of the same anatomy on one grid (repeatable)")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="reproductions: shared data folder")
    p.add_argument("--epochs", type=int, default=None, help="reproductions: training epochs (paper: 100)")
    p.add_argument("--images-per-volume", type=int, default=None, help="reproductions: training slices per volume")
    p.add_argument("--doc", type=Path, default=None, help="reproductions: write this Markdown (docs/reproductions.md)")
    p.set_defaults(run=run)


def _parse_params(items: list[str]) -> dict[str, dict]:
    params: dict[str, dict] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(rule_message("--param", "must look like METHOD.KEY=VALUE", item,
                                           "Use e.g. --param nlm.h_factor=0.6."))
        key, value = item.split("=", 1)
        method, name = key.split(".", 1)
        params.setdefault(method, {})[name] = yaml.safe_load(value)
    return params


def build_config(args):
    """An EvaluationConfig from ``--config`` or from the flags (each flag checked by pydantic)."""
    from pydantic import ValidationError

    from ..evaluation.config import EvaluationConfig, load_evaluation_config, parse_size_xyz

    try:
        if args.config is not None:
            config = load_evaluation_config(args.config)
            if args.fidelity:
                config.fidelity = True
            if args.detector_bits is not None:  # validated again, so the xr-only rule holds for the override too
                config = EvaluationConfig.model_validate({**config.model_dump(), "detector_bits": args.detector_bits})
            return config
        missing = [f"--{n}" for n in ("data", "modality", "noise", "methods") if getattr(args, n) is None]
        if missing:
            raise ConfigError(rule_message("arguments", "must include --data, --modality, --noise and --methods",
                                           missing, "Pass them, or --config with a YAML file."))
        fields = dict(data=args.data, modality=args.modality, methods=args.methods.split(","),
                      levels=[float(v) for v in args.noise.split(",") if v.strip()], reference=args.reference,
                      crop=parse_size_xyz(args.crop) if args.crop else None, sigma=args.sigma, mask=args.mask or "none",
                      tta=args.tta, device=args.device, fast_noise=args.fast_noise, detector_bits=args.detector_bits,
                      exclude_training=args.exclude_training, baseline_params=_parse_params(args.param),
                      figures=not args.no_figures, bootstrap_resamples=args.bootstrap, fidelity=args.fidelity)
        if args.seed is not None:
            fields["seed"] = args.seed
        return EvaluationConfig(**fields)
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"evaluation settings are invalid: {exc}") from exc


def run(args) -> int:
    if args.protocol == "models-table":
        return _models_table(args)
    if args.out is None:
        raise ConfigError(rule_message("--out", "is required for this protocol", None,
                                       "Pass --out REPORT_DIR (it is created)."))
    if args.protocol == "real-noise":
        return _real_noise(args)
    if args.protocol != "simulate":
        from ..evaluation.config import parse_size_xyz
        from ..evaluation.reproductions import run_reproductions

        try:
            crop = parse_size_xyz(args.crop) if args.crop else None
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        run_reproductions(args.protocol, data_root=args.data_root, out_dir=args.out, epochs=args.epochs,
                          images_per_volume=args.images_per_volume, doc=args.doc, seed=args.seed, crop=crop)
        return 0
    from tqdm import tqdm

    from ..evaluation import evaluate, write_report
    from .reporting import StopFlag

    config = build_config(args)
    bars: list = []

    def progress(done: int, total: int, message: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="evaluate", unit="run"))
        bars[0].n = done
        bars[0].set_postfix_str(message, refresh=True)

    with StopFlag() as stop:
        try:
            result = evaluate(config, progress=progress, should_stop=stop)
        finally:
            for bar in bars:
                bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    config_path = args.out / "config.yaml"  # with the seed actually used: re-running it gives the same numbers
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    command = f"meddenoise evaluate --config {shlex.quote(str(config_path))} --out {shlex.quote(str(args.out))}"
    paths = write_report(result, args.out, command=command)
    logger.info("report: %s", paths["markdown"])
    return 0


def _models_table(args) -> int:
    from ..evaluation.models_table import load_reports, models_markdown

    if not args.reports or args.doc is None:
        raise ConfigError(rule_message("--reports / --doc", "are required for --protocol models-table",
                                       (args.reports, args.doc),
                                       "Pass --reports docs/evaluation/*_heldout --doc docs/models.md."))
    given = {flag: paths for flag in ("reports", "candidates", "ablations") if (paths := getattr(args, flag))}
    command = "meddenoise evaluate --protocol models-table" + "".join(
        f" --{flag} " + " ".join(shlex.quote(str(p)) for p in paths) for flag, paths in given.items())
    command += f" --doc {shlex.quote(str(args.doc))}"
    loaded = {flag: load_reports(paths) for flag, paths in given.items()}
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(models_markdown(loaded["reports"], command=command, candidates=loaded.get("candidates"),
                                        ablations=loaded.get("ablations")), encoding="utf-8")
    logger.info("wrote %s", args.doc)
    return 0


def _real_noise(args) -> int:
    import secrets

    from ..evaluation.realnoise_protocol import evaluate_real_noise, load_pairs, write_real_noise_report
    from .reporting import StopFlag

    missing = [flag for flag, value in (("--pairs", args.pairs), ("--modality", args.modality),
                                        ("--methods", args.methods)) if not value]
    if missing:
        raise ConfigError(rule_message("arguments of --protocol real-noise", "must include --pairs, --modality and "
                                       "--methods", missing, "Pass e.g. --pairs a.nrrd b.nrrd --modality mr "
                                       "--methods noisy,model,nlm."))
    pairs = load_pairs([tuple(p) for p in args.pairs])
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)  # drawn, then recorded
    mask = args.mask or "foreground"
    with StopFlag() as stop:
        result = evaluate_real_noise(pairs, [m for m in args.methods.split(",") if m.strip()], args.modality,
                                     tta=args.tta, device=args.device, mask=mask, sigma=args.sigma, seed=seed,
                                     reference=args.reference, baseline_params=_parse_params(args.param),
                                     n_resamples=args.bootstrap, should_stop=stop)
    options = [f"--pairs {shlex.quote(a)} {shlex.quote(b)}" for a, b in args.pairs]
    options += [f"--modality {args.modality}", f"--methods {shlex.quote(args.methods)}",
                f"--reference {shlex.quote(result['reference'])}", f"--mask {mask}", f"--sigma {args.sigma}",
                f"--tta {args.tta}", f"--device {shlex.quote(args.device)}", f"--seed {seed}",
                f"--bootstrap {args.bootstrap}"] + [f"--param {shlex.quote(p)}" for p in args.param]
    command = " ".join(["meddenoise evaluate --protocol real-noise", *options, f"--out {shlex.quote(str(args.out))}"])
    paths = write_real_noise_report(result, args.out, command=command)
    logger.info("report: %s", paths["markdown"])
    return 0
