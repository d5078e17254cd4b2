"""Conversion stage: a GPT-2 TensorFlow checkpoint (OpenAI / AI Dungeon 2 "model_v5" layout) -> a Hugging Face
folder (safetensors, tokenizer, config, generation config, model card), without TensorFlow.

Top-down: `convert.py` orchestrates; `bundle_reader.py` reads TF tensor bundles (`leveldb_table.py` for the `.index`
table, `bundle_proto.py` for its protobuf values); `gpt2_mapping.py` names the weights; `safetensors_stream.py`
writes them one at a time; `tokenizer.py`, `verify.py`, `model_card.py` (the card's text; adventure.model_card
writes it) do the rest. `bundle_writer.py` writes bundles for tests and benchmarks.
"""
