"""Training: step-indexed batches, the loop, checkpoints that resume exactly, DDP under torchrun."""
