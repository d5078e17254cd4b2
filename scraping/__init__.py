"""Scraping stage: crawl chooseyourstory.com (or read trees / a page snapshot), translate, build the dataset."""
