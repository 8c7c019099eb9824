"""Run by mkdocs-gen-files at every `mkdocs build` and `mkdocs serve` (see mkdocs.yml): adds the
book's lab pages, labs index, Faults page, nav sections and figures, made from labs/ (see
splitbrain/book.py). Nothing is written into docs/."""
from splitbrain.book import gen_files

gen_files()
