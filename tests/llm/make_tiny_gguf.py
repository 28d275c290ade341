"""Write a tiny llama-architecture GGUF model with random weights.

    python make_tiny_gguf.py OUT.gguf [--seed N]

The model is for exercising an inference server end to end (load, tokenize, complete, chat) without
any downloaded weights: 2 layers, 64-wide embeddings, 4 attention heads, a 128-wide feed-forward
block, a SentencePiece-style ("llama") vocabulary of a few hundred tokens and a plain Jinja chat
template. Its output is gibberish by design.

The file is a pure function of the seed and of the gguf package's version (requirements.txt
pins it): the same seed gives the same bytes, hence the same sha256.
Needs the gguf package and numpy only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

ARCH = "llama"
N_CTX = 2048
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
RMS_EPS = 1e-5
ROPE_BASE = 10000.0
INIT_STD = 0.02
# Embedding dimension 0 carries a constant that survives every layer, so after the final norm it is
# always about +3.5: output.weight's column 0 then acts as a per-token logit bias. A strongly
# negative one there keeps the model from ever sampling the control and byte tokens. So the model
# writes printable pieces only and never ends a reply by itself: every completion runs to its
# max_tokens (finish_reason "length", usage.completion_tokens == max_tokens). Byte tokens 0x80-0xFF
# would otherwise let llama-cpp-python run past max_tokens while it completes a UTF-8 sequence.
BIAS_DIM = 0
BIAS_ACTIVATION = 4 * INIT_STD
SUPPRESSED_LOGIT_WEIGHT = -8.0

UNK, BOS, EOS = 0, 1, 2
SPACE = "\u2581"  # SentencePiece's word-boundary marker

# A ChatML-like template, rendered by the server's Jinja formatter (bos_token/eos_token are passed in).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_WORD_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how their "
    "if will up other about out many then them these so some her would make like him into time has look "
    "two more write go see number no way could people my than first water been call who oil its now find "
    "long down day did get come made may part hello world server model token test chat user assistant "
    "system health load balance request reply ok yes"
)
WORDS = _WORD_TEXT.split()


def build_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a small SentencePiece (BPE-with-scores) vocabulary.

    Every text is tokenizable: the printable ASCII characters are pieces of their own, and anything
    else falls back to the 256 byte tokens.
    """
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    scores = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(gguf.TokenType.BYTE)
        scores.append(0.0)

    # SentencePiece merges two adjacent pieces only when their concatenation is a token, so every
    # prefix of a word piece is a token too: "▁hello" is reached through "▁h", "▁he", ...
    pieces: list[str] = [SPACE, "\n"]
    pieces += [chr(c) for c in range(0x21, 0x7F)]  # printable ASCII but the space
    for word in WORDS:
        pieces += [SPACE + word[:i] for i in range(1, len(word) + 1)]
    pieces += ["<|", "|>"]
    seen: set[str] = set(tokens)
    for piece in pieces:
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
        # SentencePiece scores are log-probabilities: the tokenizer prefers merges into longer,
        # higher-scoring pieces, so longer pieces score higher here.
        scores.append(float(len(piece)) - len(tokens) / 1000.0)
    return tokens, scores, [int(t) for t in types]


def tensors(rng: np.random.Generator, types: list[int]) -> list[tuple[str, np.ndarray]]:
    """The llama tensors in numpy's row-major (out_features, in_features) layout, float32."""
    n_vocab = len(types)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * INIT_STD).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones((n,), dtype=np.float32)

    token_embd = weight(n_vocab, N_EMBD)
    token_embd[:, BIAS_DIM] = BIAS_ACTIVATION
    out = [("token_embd.weight", token_embd)]
    head_dim = N_EMBD // N_HEAD
    for i in range(N_LAYER):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", ones(N_EMBD)),
            (p + "attn_q.weight", weight(N_HEAD * head_dim, N_EMBD)),
            (p + "attn_k.weight", weight(N_HEAD_KV * head_dim, N_EMBD)),
            (p + "attn_v.weight", weight(N_HEAD_KV * head_dim, N_EMBD)),
            (p + "attn_output.weight", weight(N_EMBD, N_HEAD * head_dim)),
            (p + "ffn_norm.weight", ones(N_EMBD)),
            (p + "ffn_gate.weight", weight(N_FF, N_EMBD)),
            (p + "ffn_up.weight", weight(N_FF, N_EMBD)),
            (p + "ffn_down.weight", weight(N_EMBD, N_FF)),
        ]
    output = weight(n_vocab, N_EMBD)
    output[:, BIAS_DIM] = 0.0
    output[np.asarray(types) != int(gguf.TokenType.NORMAL), BIAS_DIM] = SUPPRESSED_LOGIT_WEIGHT
    out += [("output_norm.weight", ones(N_EMBD)), ("output.weight", output)]
    return out


def write_model(path: Path, seed: int) -> None:
    tokens, scores, types = build_vocab()
    rng = np.random.default_rng(seed)

    w = gguf.GGUFWriter(str(path), ARCH)
    w.add_name(f"tiny-random-llama-seed{seed}")
    w.add_description("Random weights; for testing inference plumbing only.")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(len(tokens))
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_rope_freq_base(ROPE_BASE)

    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(UNK)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    for name, data in tensors(rng, types):
        w.add_tensor(name, data)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the .gguf file to write (replaced if it exists)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so that a reader never sees a half-written model.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_model(tmp, args.seed)
        tmp.chmod(0o644)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"path: {out}")
    print(f"size: {out.stat().st_size}")
    print(f"sha256: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
