"""llama-models validation workload: Llama 3's decode loop (``Llama.generate``) with its KV cache.

The reference ``Transformer`` keeps each layer's KV cache as plain tensor attributes
(``cache_k``/``cache_v``, not buffers), rebinds them in forward (``self.cache_k =
self.cache_k.to(xq)``) and writes the new keys at a Python-int position (``start_pos``).
``Llama.generate`` decides text-only vs vision with ``isinstance(self.model, Transformer)``,
which a compiled module (``OptimizedModule``) fails, so ``run(m)`` is its text-only greedy loop
written out, statement for statement: a batch of two prompts of different lengths, the first
call on the shared prefix, then one position per step, prompt tokens forced where a prompt is
longer, stop on end-of-sequence. fairscale's model-parallel layers need a process group: the
factory starts a one-process ``gloo`` group on an in-memory store (no network).
"""

from __future__ import annotations

MAX_SEQ_LEN = 32
NEW_TOKENS = 8
VOCAB = 128
STOP = (VOCAB - 1,)
PAD = -1


def _model_parallel():
    import torch.distributed as dist
    from fairscale.nn.model_parallel import initialize as fs_init

    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    if not fs_init.model_parallel_is_initialized():
        fs_init.initialize_model_parallel(1)


def llama3():
    import torch
    from llama_models.llama3.args import ModelArgs
    from llama_models.llama3.model import Transformer

    _model_parallel()
    torch.manual_seed(0)
    args = ModelArgs(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=VOCAB, multiple_of=16,
                     max_batch_size=2, max_seq_len=MAX_SEQ_LEN)
    model = Transformer(args).eval()
    with torch.no_grad():  # fairscale's init_method here is the identity: weights come from a checkpoint
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, VOCAB - 1, (n,), generator=gen).tolist() for n in (7, 4)]

    def run(m):
        torch.manual_seed(0)
        min_len, max_len = min(map(len, prompts)), max(map(len, prompts))
        total_len = min(NEW_TOKENS + max_len, MAX_SEQ_LEN)
        tokens = torch.full((len(prompts), total_len), PAD, dtype=torch.long)
        for k, t in enumerate(prompts):
            tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long)
        eos_reached = torch.tensor([False] * len(prompts))
        input_text_mask = tokens != PAD
        stop_tokens = torch.tensor(STOP)
        tokens[~input_text_mask] = 0  # pad id must index the embedding on the first (prefix) call
        all_logits = []
        prev_pos = 0
        for cur_pos in range(min_len, total_len):
            logits = m(tokens[:, prev_pos:cur_pos], prev_pos)
            all_logits.append(logits[:, -1])
            next_token = torch.argmax(logits[:, -1], dim=-1).reshape(-1)
            next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
            tokens[:, cur_pos] = next_token
            eos_reached |= (~input_text_mask[:, cur_pos]) & (torch.isin(next_token, stop_tokens))
            prev_pos = cur_pos
            if all(eos_reached):
                break
        return tokens, torch.stack(all_logits, dim=1)

    return model, run
