"""The run options are declared once (stlib.engine.options.RunOptions); stylize's signature, the CLI's flags,
the studio's mapping and StylizeResult.settings agree with that declaration."""

import argparse
import inspect
import math
from dataclasses import fields

import pytest
import torch

import stlib
from stlib.cli import build_parser
from stlib.engine.options import RunOptions, declared_defaults
from stlib.engine.settings import resolve_settings
from stlib.studio.settings import StudioSettings

#: stylize's keywords that are not run options: which network, where, the images' regions, and run control.
NOT_OPTIONS = {"model", "weights", "pooling", "device", "style_masks", "callback", "progress", "stop"}


def test_stylize_signature_is_the_declaration():
    params = inspect.signature(stlib.stylize).parameters
    keywords = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    declared = {f.name: f for f in fields(RunOptions)}
    assert set(keywords) - NOT_OPTIONS == set(declared), "stylize's keywords and RunOptions differ"
    for name, f in declared.items():
        assert keywords[name].default == f.default, f"{name}: stylize's default differs from RunOptions'"
        assert keywords[name].annotation == f.type, f"{name}: stylize's type differs from RunOptions'"


def test_every_option_has_help_and_a_check():
    for f in fields(RunOptions):
        assert f.metadata["help"].strip(), f.name
        assert callable(f.metadata["check"]), f.name
    RunOptions()  # the defaults pass their own checks


@pytest.mark.parametrize("name, bad", [
    ("gram_norm", "chw2"), ("gram_norm", 2), ("optimizer", "sgd"), ("steps", -1), ("size", 16), ("lr", 0.0),
    ("seed", 1.5), ("every", 0), ("scales", 0), ("style_blend", [1, math.nan]), ("preserve_color", "sepia"),
    ("init", "photo"), ("rtol", -1.0), ("cuda_graph", "yes"), ("precision", "fp64"), ("style_weight", -1.0),
])
def test_bad_values_are_refused_naming_the_option(name, bad):
    with pytest.raises(ValueError, match=name):
        RunOptions(**{name: bad})


def test_layer_names_are_checked_in_the_declaration():
    with pytest.raises(KeyError, match="relu9_1"):
        RunOptions(style_layers=["relu9_1"])
    with pytest.raises(ValueError, match="relu1_1"):
        RunOptions(content_layers={"relu1_1": -1.0})


def test_gram_norm_is_validated_before_the_run(vgg, tiny_pair):
    with pytest.raises(ValueError, match="gram_norm"):
        stlib.stylize(*tiny_pair, model=vgg, gram_norm="sum", steps=1, size=32, progress=False)


def test_pick_takes_only_declared_names():
    picked = RunOptions.pick({"steps": 5, "callback": print, "model": None})
    assert picked.steps == 5 and picked.optimizer == declared_defaults()["optimizer"]


def _transfer_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["transfer"]


def test_cli_flags_are_derived_from_the_declaration():
    actions = {a.dest: a for a in _transfer_parser()._actions}
    flagged = [f for f in fields(RunOptions) if f.metadata["flag"] is not None]
    assert len(flagged) >= 9
    for f in flagged:
        action = actions[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.help == f.metadata["help"] and action.default is None
        if f.metadata["choices"]:
            assert set(action.choices) <= {c for c in f.metadata["choices"] if c is not None}


def test_cli_flag_values_are_checked_by_the_declaration(capsys):
    parser = _transfer_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["a.png", "b.png", "-o", "c.png", "--steps", "-1"])
    assert "--steps" in capsys.readouterr().err
    assert parser.parse_args(["a.png", "b.png", "-o", "c.png", "--style-weight", "-1"]).style_weight == -1.0
    # (a bad weight is refused by stylize, in one line: tests/test_cli.py)
    args = parser.parse_args(["a.png", "b.png", "-o", "c.png", "--steps", "7", "--style-weight", "2.5"])
    assert args.steps == 7 and args.style_weight == 2.5 and args.content_weight is None


def test_studio_mapping_uses_only_declared_options():
    s = StudioSettings(content="a", style="b", content_weight=1.0, style_weight=2.0, style_layers={"relu1_1": 1.0},
                       tv_weight=0.0, size=64, steps=3, preserve_color=True)
    kwargs = s.stylize_kwargs()
    declared = {f.name for f in fields(RunOptions)}
    assert set(kwargs) <= declared, set(kwargs) - declared
    RunOptions(**kwargs)  # and the values it produces pass the declaration's checks


def test_result_settings_report_every_option(vgg, tiny_pair):
    result = stlib.stylize(*tiny_pair, model=vgg, steps=1, size=32, precision="fp32", progress=False)
    assert {f.name for f in fields(RunOptions)} <= set(result.settings)
    assert result.settings["gram_norm"] is True and result.settings["precision"] == "fp32"


def test_run_settings_resolve_from_the_options(vgg):
    run = resolve_settings(vgg, torch.device("cpu"), 1, RunOptions(steps=4, size=64, optimizer="adam"))
    assert run.plan == [(64, 4)] and run.options.optimizer == "adam"
