"""dfguard.config: strict YAML → dataclass loading."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from dfguard.config import ConfigError, load_config, to_dict


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-4
    betas: tuple[float, ...] = (0.9, 0.999)


@dataclass(frozen=True)
class Outer:
    name: str
    kind: Literal["a", "b"] = "a"
    epochs: int = 3
    weights: Path | None = None
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be at least 1")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_loads_nested_values_with_types(tmp_path):
    text = "name: x\nkind: b\nweights: /w.pth\ninner: {lr: 3, betas: [0.5, 0.6]}\n"
    config = load_config(Outer, write(tmp_path, text))
    assert config == Outer("x", "b", 3, Path("/w.pth"), Inner(3.0, (0.5, 0.6)))
    assert to_dict(config)["inner"] == {"lr": 3.0, "betas": [0.5, 0.6]}


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nepoch: 4\n", r"unknown key\(s\) epoch"),
    ("name: x\ninner: {lr: 1, momentum: 0.9}\n", r"unknown key\(s\) inner.momentum"),
    ("kind: a\n", "missing required key name"),
    ("name: x\nepochs: '3'\n", "epochs must be int"),
    ("name: x\nepochs: true\n", "epochs must be int"),
    ("name: x\ninner: {lr: fast}\n", "inner.lr must be float"),
    ("name: x\nkind: c\n", r"kind must be one of \['a', 'b'\]"),
    ("name: x\nepochs: 0\n", "epochs must be at least 1"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_mistakes_are_named_with_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(Outer, path)
    assert str(path) in str(error.value) or "override" in str(error.value)


def test_overrides_go_through_the_same_checks(tmp_path):
    path = write(tmp_path, "name: x\n")
    assert load_config(Outer, path, ["inner.lr=3e-4", "epochs=7"]) == Outer("x", epochs=7, inner=Inner(3e-4))
    with pytest.raises(ConfigError, match=r"unknown key"):
        load_config(Outer, path, ["inner.lrr=1"])
    with pytest.raises(ConfigError, match=r"key.subkey=value"):
        load_config(Outer, path, ["epochs"])
