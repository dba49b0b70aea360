"""Web crawls in: WARC/WET records to documents (record selection, HTTP decoding, charsets, URL
filters, main-text extraction). Plain functions, no Beam; pipeline/stages/read.py runs them."""
