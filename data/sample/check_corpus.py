"""Quick corpus check used while writing data/sample (the real loader lives in adventure/)."""
import json, sys, pathlib

def walk(tree):
    stack = [(n, 1) for n in tree["action_results"] if n]
    nodes = chars = maxdepth = branching = leaves = 0
    chars += len(tree["first_story_block"])
    while stack:
        node, d = stack.pop()
        nodes += 1; maxdepth = max(maxdepth, d)
        chars += len(node["action"]) + len(node["result"])
        kids = [k for k in node.get("action_results") or [] if k]
        if len(kids) >= 2: branching += 1
        if not kids: leaves += 1
        stack += [(k, d + 1) for k in kids]
    return nodes, chars, maxdepth, branching, leaves

for p in sys.argv[1:]:
    t = json.load(open(p, encoding="utf-8"))
    assert set(t) >= {"tree_id", "context", "first_story_block", "action_results"}, p
    print(p, "nodes=%d chars=%d depth=%d branching_nodes=%d endings=%d" % walk(t))
