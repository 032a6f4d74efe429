"""A byte-level BPE tokenizer (GPT-2 style: spaces and newlines kept) trained offline on given texts.

The models this repository makes itself (TinyWorld, the benchmark's and the tests' random-weight models)
all use it; <|endoftext|> is id 0, the models' BOS/EOS id."""
from __future__ import annotations

EOS = "<|endoftext|>"


def byte_bpe(texts, vocab_size: int, **special):
    """A PreTrainedTokenizerFast trained on `texts`; `special` goes to PreTrainedTokenizerFast
    (e.g. pad_token, model_max_length)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, **special)
