"""Adapters: receive bytes from a legacy system, archive them, publish an envelope. Nothing else."""
