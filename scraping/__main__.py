"""`python -m scraping [source=sample|cys|snapshot|trees] [translator=none|opus_mt] [out_dir=<dir>]`."""
from adventure.cli import stage_main
from scraping.config import ScrapingConfig
from scraping.stage import run

main = stage_main("scraping", ScrapingConfig, run)

if __name__ == "__main__":
    main()
