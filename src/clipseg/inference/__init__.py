"""Inference beyond one image: sources (files, folders, videos), post-processing, writers, bulk runs."""
