"""The real third-party artifacts beside the checkout (../shared/data; read its READMEs)."""
from adventure.paths import SHARED_DATA_DIR

REAL_TREES_DIR = SHARED_DATA_DIR / "cys-trees"
REAL_TF_CHECKPOINT_DIR = SHARED_DATA_DIR / "tf-gpt2-tiny"
# The six real chooseyourstory trees and their non-null node counts (sorted by file name).
REAL_TREE_NODE_COUNTS = {"story14.json": 41, "story16.json": 39, "story23.json": 15, "story39.json": 19,
                         "story42.json": 26, "story7.json": 107}
