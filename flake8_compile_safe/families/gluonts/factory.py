"""GluonTS validation workload: ``DeepARModel.forward``, the model's own sampling decode.

DeepAR's forward unrolls its LSTM over the context, then samples the forecast one step at a time
inside forward: the LSTM state (a tuple of tensors) carried from step to step, the sampled value
appended to the target history (``torch.cat``) from which the next step's lags are read, a
``torch.distributions`` Student-t built and sampled every step. ``run(m)`` is the predictor's
call: one batch of series with their time features, ``num_parallel_samples`` sample paths.
"""

from __future__ import annotations

CONTEXT, HORIZON, BATCH = 24, 6, 2


def deepar():
    import torch
    from gluonts.torch.model.deepar.module import DeepARModel

    torch.manual_seed(0)
    model = DeepARModel(freq="h", context_length=CONTEXT, prediction_length=HORIZON,
                        num_feat_dynamic_real=2, num_layers=2, hidden_size=16, dropout_rate=0.0,
                        lags_seq=[1, 2, 3, 24], num_parallel_samples=8).eval()
    past = model._past_length
    g = torch.Generator().manual_seed(1)
    t = torch.arange(past + HORIZON, dtype=torch.float32)
    target = 10 + torch.sin(t / 4) + 0.1 * torch.randn(BATCH, past + HORIZON, generator=g)
    time_feat = torch.stack([torch.sin(t / 24), torch.cos(t / 24)], dim=-1).expand(BATCH, -1, -1)
    inputs = dict(feat_static_cat=torch.zeros(BATCH, 1, dtype=torch.long),
                  feat_static_real=torch.ones(BATCH, 1),
                  past_time_feat=time_feat[:, :past].contiguous(),
                  past_target=target[:, :past].contiguous(),
                  past_observed_values=torch.ones(BATCH, past),
                  future_time_feat=time_feat[:, past:].contiguous())

    def run(m):
        torch.manual_seed(0)  # the sample paths are random draws
        with torch.no_grad():
            return m(**inputs)

    return model, run
