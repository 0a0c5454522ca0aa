"""TimesFM 2.5 validation workload: the module's own ``decode`` (prefill + autoregressive steps).

TimesFM itself compiles ``model.forward`` and calls ``model.decode`` (``TimesFM_2p5_200M_torch.
load_checkpoint``); ``run(m)`` calls the package's ``decode`` with ``m`` as ``self``, so every
``self(...)`` inside the loop goes through ``m`` (eager or compiled) with the per-layer caches.
"""

from __future__ import annotations

import dataclasses

CONTEXT = 128  # 4 input patches of 32
DECODE_STEPS = 3  # autoregressive steps of one output patch (128) each


def _tiny_definition():
    from timesfm import configs
    from timesfm.timesfm_2p5.timesfm_2p5_base import TimesFM_2p5_200M_Definition

    full = TimesFM_2p5_200M_Definition()
    dims, q = 32, len(full.quantiles) + 1
    block = configs.ResidualBlockConfig
    return dataclasses.replace(
        full,
        tokenizer=block(input_dims=2 * full.input_patch_len, hidden_dims=dims, output_dims=dims,
                        use_bias=True, activation="swish"),
        stacked_transformers=configs.StackedTransformersConfig(
            num_layers=2,
            transformer=dataclasses.replace(full.stacked_transformers.transformer, model_dims=dims,
                                            hidden_dims=dims, num_heads=2)),
        output_projection_point=block(input_dims=dims, hidden_dims=dims,
                                      output_dims=full.output_patch_len * q, use_bias=False,
                                      activation="swish"),
        output_projection_quantiles=block(input_dims=dims, hidden_dims=dims,
                                          output_dims=full.output_quantile_len * q, use_bias=False,
                                          activation="swish"),
    )


def decode():
    import torch
    from timesfm.timesfm_2p5.timesfm_2p5_torch import TimesFM_2p5_200M_torch_module

    class TinyTimesFM(TimesFM_2p5_200M_torch_module):
        config = _tiny_definition()

    torch.manual_seed(0)
    model = TinyTimesFM().eval()
    horizon = DECODE_STEPS * model.o + 1
    gen = torch.Generator().manual_seed(1)
    t = torch.arange(CONTEXT, dtype=torch.float32)
    inputs = (10 + torch.sin(t / 4) + 0.1 * torch.randn(2, CONTEXT, generator=gen))
    masks = torch.zeros_like(inputs, dtype=torch.bool)
    masks[1, :40] = True  # second series is shorter: left padding, as forecast() builds it

    def run(m):
        torch.manual_seed(0)
        points, quantiles, ar = TimesFM_2p5_200M_torch_module.decode(m, horizon, inputs, masks)
        return points, quantiles, ar

    return model, run
