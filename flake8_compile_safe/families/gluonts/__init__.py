"""AWS's GluonTS (``gluonts``): DeepAR, an autoregressive LSTM forecaster sampling one step at a time."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="gluonts",
    dist="gluonts",
    version="0.16.2",
    package="gluonts",
    sentinel="gluonts/torch/model/deepar/module.py",
    factories={"deepar": "flake8_compile_safe.families.gluonts.factory:deepar"},
    runtime_deps=("numpy", "pandas", "pydantic", "toolz", "tqdm", "typing-extensions"),
    about=("DeepAR samples its forecast inside forward, one step at a time: an nn.LSTM call per "
           "step with the (h, c) state carried over, the sample appended to the target history "
           "with torch.cat and the next lags read from it. Dynamo does not trace nn.LSTM (allow_rnn "
           "is off): a graph break at every LSTM call, in the context unroll and in every decode "
           "step; the growing history recompiles until dynamic shapes take over."),
)
