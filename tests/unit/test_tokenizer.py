"""The offline CLIP-format tokenizer: one token per corpus word, and the CLIP files transformers expects."""

from __future__ import annotations

from transformers import AutoTokenizer

from clipseg.core.tokenizer import build_clip_tokenizer, byte_symbols

# "red" before "green" and "green" before "greenish": shared pieces that naive merges would split.
CORPUS = ["a red circle", "the green square on the left", "greenish reddish circles", "cropped photo of one"]


def test_every_corpus_word_is_one_token(tmp_path):
    tok = build_clip_tokenizer(CORPUS, tmp_path)
    for text in CORPUS:
        tokens = tok.convert_ids_to_tokens(tok(text).input_ids)[1:-1]
        assert tokens == [w + "</w>" for w in text.split()], tokens


def test_saved_folder_loads_like_a_hub_tokenizer(tmp_path):
    build_clip_tokenizer(CORPUS, tmp_path)
    assert {"vocab.json", "merges.txt"} <= {p.name for p in tmp_path.iterdir()}
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    ids = tok("a blue triangle").input_ids  # unseen words still tokenize, into byte pieces
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) > 4


def test_byte_symbols_are_in_clips_vocabulary_order():
    """Built vocabularies start like CLIP's own vocab.json: printable bytes as themselves ("!" is 0,
    "a" 64), then stand-ins from U+0100 for the others ("Ā", byte 0, is 188)."""
    symbols = byte_symbols()
    assert len(set(symbols)) == 256
    assert symbols.index("!") == 0 and symbols.index("a") == 64 and symbols.index("Ā") == 188
    try:  # transformers 4 still has the table (5 dropped it)
        from transformers.models.clip.tokenization_clip import bytes_to_unicode
    except ImportError:
        return
    assert symbols == list(bytes_to_unicode().values())
