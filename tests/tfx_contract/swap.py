"""Runs TFX's own executor tests (they ship in the tfx wheel) against kubetfx's executors.

TFX's test modules reach the executor through their module-level name `executor`
(`executor.Executor()`, `executor._CsvToExample(...)`). `swap_executor` replaces that
name, for one test, with a copy of TFX's executor module in which the names given are
ours; TFX's test code and assertions run unchanged. `expected_failure` marks one
inherited TFX test as an intended, documented difference (components/README.md):
strict, so a difference that disappears is noticed, and pinned to the exception the
difference raises, so a failure for another reason is not hidden."""
from __future__ import annotations

import types

import pytest


def executor_module(stock: types.ModuleType, **ours) -> types.ModuleType:
    proxy = types.ModuleType(stock.__name__, stock.__doc__)
    proxy.__dict__.update(vars(stock))
    proxy.__dict__.update(ours)
    return proxy


def swap_executor(monkeypatch, tfx_test_module: types.ModuleType, **ours) -> None:
    monkeypatch.setattr(tfx_test_module, "executor", executor_module(tfx_test_module.executor, **ours))


def expected_failure(base_class: type, name: str, reason: str, raises=AssertionError):
    """TFX's test `name`, inherited, expected to fail with `raises` for `reason`."""
    tfx_test = getattr(base_class, name)

    def test(self):
        return tfx_test(self)

    test.__name__ = test.__qualname__ = name
    return pytest.mark.xfail(strict=True, raises=raises, reason=reason)(test)
