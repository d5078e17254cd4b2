"""python -m serving model=<tiny|best|dir|hub id> host=127.0.0.1 port=5000 [paths.artifacts=<dir>]"""
from adventure.cli import stage_main
from serving.config import ServingConfig
from serving.server import serve

main = stage_main("serving", ServingConfig, serve)

if __name__ == "__main__":
    main()
