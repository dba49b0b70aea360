"""The Beam jobs (curate, pack, sft): each builds its graph and runs through one job helper (beam_job.py)."""
